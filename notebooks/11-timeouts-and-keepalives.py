# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11. Timeouts and keepalives
#
# By the end of this notebook you will be able to:
#
# * say how long a NAT keeps a silent UDP flow open, by the standard and by
#   the Linux kernel;
# * tell a mapping kept alive from a hole kept open, and say why heart-beats
#   to the server do not keep a silent partner's hole open;
# * say what punchlab's liveness timeout does when the partner falls silent,
#   to the millisecond;
# * choose a heart-beat interval from the NAT's timeout, the liveness timeout
#   and the loss on the path.
#
# UDP has no connection and no goodbye, so a NAT cannot see a chat end: it
# forgets a flow after a time without traffic. RFC 4787 §4.3 asks that a UDP
# mapping live at least two minutes without traffic (REQ-5; five minutes or
# more is RECOMMENDED, shorter only toward well-known ports), refreshed by
# outbound traffic (REQ-6: the "NAT outbound refresh behavior" MUST be true;
# refresh by inbound traffic MAY be). The Linux kernel, the NAT of notebook 8
# and of many home routers, keeps less: its connection tracker drops a UDP
# flow after `net.netfilter.nf_conntrack_udp_timeout` = 30 s when no reply
# was seen, and after `nf_conntrack_udp_timeout_stream` = 120 s once there
# were replies (`Documentation/networking/nf_conntrack-sysctl.rst`; 180 s
# before kernel commit 294304e4c522, "udp: set stream timeout to 2 minutes",
# 2018).
#
# And conntrack keeps one timer *per flow*: a flow is both endpoints, so
# Alice's flow to the server and her flow to Bob are two entries, each
# counting down on its own (notebook 8's `conntrack -L` shows two of them,
# one `[UNREPLIED]`, at 29 s and 27 s). The simulator's NATs do the same: a
# mapping lives while anything leaves through it, and each remote's
# *permission* to come in lives for one timeout after the last datagram that
# went out to that remote. With address-dependent filtering, a live
# permission for any port of the remote's address lets it in; with
# endpoint-independent filtering (a full cone) there are no permissions, and
# a live mapping lets everyone in.
#
# The simulator's NAT is stricter than Linux in two ways, and both are
# allowed by RFC 4787: only outbound traffic refreshes a permission (REQ-6
# requires that much; conntrack also counts the replies), and every flow has
# the one timeout (conntrack keeps a flow that saw replies for 120 s, not
# 30 s). The chats below all saw replies, so a Linux NAT would keep their
# holes open for two minutes of silence rather than 30 s: the same story,
# four times slower. The strict NAT is the one to design keep-alives for,
# since a home router may be it.
#
# **Predict first.** Both NATs are port-restricted cones that forget after
# 30 s. Alice and Bob say hello at 5 s and 10 s, then fall silent. Their
# peers keep beating the *server* every 3 s, but not each other. Alice writes
# again at 45 s. Does her line reach Bob?

# %%
from punchlab.exercises_keepalive import late_line_question

late_line_question(lambda: "port-restricted-cone", lambda: False)

# %% [markdown]
# `timed_chat` runs such a chat on the simulator: two peers behind two NATs
# with the given timeout, lines at chosen times (seconds since both sides
# connected), and for each line whether it arrived, or where and why it was
# dropped. `PeerConfig(peer_heartbeat=False)` turns off the beats to the
# partner and leaves those to the server; the liveness timeout is set long
# here so that only the NATs decide (more on it below). Each line is one
# plain `TEXT` datagram, as the Go client sends it, so a line's fate is that
# datagram's; [chapter 14](14-udp-loses-lines.ipynb) adds acknowledgements,
# which resend a lost line (and whose answers refresh the holes too).

# %%
from punchlab.exercises_keepalive import SILENT_SCHEDULE
from punchlab.peer import PeerConfig
from punchlab.sim.keepalive import timed_chat

server_only = PeerConfig(peer_heartbeat=False, peer_timeout=600.0)
silent = timed_chat(SILENT_SCHEDULE, duration=50.0, nat_timeout=30.0, config=server_only)
print(silent.text())

# %% [markdown]
# NAT B dropped Alice's line with the reason "permission expired": its
# mapping is alive (Bob's heart-beats to the server refresh it every 3 s),
# but the permission for Alice was last refreshed by Bob's "hi Alice" at
# 10 s, so it closed at 40 s. The table shows each remote's own expiry where
# it closes before the mapping does:

# %%
net = silent.network
print(net.nat("NAT B").show(net.now))

# %% [markdown]
# **Predict again**: the same chat through two *full cones*?

# %%
late_line_question(lambda: "full-cone", lambda: False)

# %%
cones = timed_chat(
    SILENT_SCHEDULE, duration=50.0, nat="full-cone", nat_timeout=30.0, config=server_only
)
print(cones.text())

# %% [markdown]
# A full cone filters nothing, so a mapping kept alive by the server's
# heart-beats stays open to anyone, the partner included (and anyone else:
# notebook 1's Mallory). Every filtering NAT forgets the silent partner.
#
# ## Heart-beats on and off, on one time axis
#
# Alice writes four lines; Bob only reads. Above, Bob's peer beats Alice
# every 3 s (punchlab's default) as well as the server; below, only the
# server. The shading is when NAT B lets Alice in: each datagram Bob sends
# to Alice opens it for 30 s. Both runs are the same seeded simulation but
# for that one setting.

# %%
from punchlab.diagram_timeline import chat_timeline_diagram

LINES = [(5.0, "A", "hi"), (20.0, "A", "you there?"), (44.0, "A", "hello?"), (68.0, "A", "bye")]
beating = timed_chat(LINES, duration=90.0, nat_timeout=30.0, config=PeerConfig(peer_timeout=600.0))
quiet = timed_chat(LINES, duration=90.0, nat_timeout=30.0, config=server_only)
_ = chat_timeline_diagram(
    [("Bob beats Alice every 3 s (and the server)", beating), ("Bob beats only the server", quiet)]
)

# %% [markdown]
# With Bob's beats, every line is delivered; without, NAT B forgets Alice
# 30 s after Bob's last datagram to her (his `SUCCESS` while punching), and
# her two later lines are dropped there, although Bob's beats to the server
# never stopped. What each side sent in those 90 s:

# %%
for name, run in (("beating", beating), ("quiet", quiet)):
    print(f"{name:8} {run.beats_sent()} heart-beats from both peers, {len(run.nat_drops)} dropped")

# %% [markdown]
# ## How often do real clients beat?
#
# * The Go client of the original chat sends a `HEART-BEAT` every 3 s, to the
#   server until it has a partner, then to the partner (DESIGN.md §1).
# * punchlab's peer beats the partner *and* the server every 3 s
#   (`PeerConfig.heartbeat_interval`), so the server keeps its registration
#   for a later introduction.
# * ICE sends a keepalive on the pair in use when nothing was sent for Tr
#   seconds, by default 15 s (RFC 8445 §11; RFC 5245 §10 also said never
#   below 15 s). WebRTC adds consent checks (RFC 7675): each side asks for
#   fresh consent every few seconds and stops sending when none came for
#   30 s.
#
# 3 s is far below any NAT timeout above. The interval is also what tells a
# peer that the other side is still there: punchlab declares its partner
# gone after `PeerConfig.peer_timeout` (30 s) without hearing from it. With
# the partner's beats off, that timer runs too.
#
# **Predict**: peer heart-beats off, the liveness timeout at its default of
# 30 s, both NATs forgetting after 30 s. Which comes first: NAT B closing
# Alice's hole, or Alice declaring Bob gone?

# %%
from punchlab.exercises_keepalive import liveness_question

PEER_TIMEOUT = 30.0
liveness_question(lambda: PEER_TIMEOUT)

# %%
patient = PeerConfig(peer_heartbeat=False, peer_timeout=PEER_TIMEOUT)
race = timed_chat(SILENT_SCHEDULE, duration=50.0, nat_timeout=30.0, config=patient)
print(race.text())
((_, closed),) = race.open_spans["B"]
print(f"NAT B closed Alice's hole at {closed:.3f} s")
print(f"Alice declared Bob gone at   {race.gone_at['A']:.3f} s")

# %% [markdown]
# Bob's last datagram to Alice ("hi Alice") left NAT B at 10.001 s, so NAT B
# closed the hole at 40.001 s. It reached Alice at 10.022 s (1 ms on Bob's
# LAN, 20 ms across the internet, 1 ms on Alice's), so her liveness timer
# ran out at 40.022 s: for 21 ms, one one-way trip, a line from Alice would
# have left and been dropped at NAT B. After that, her peer stopped sending
# and said so, and her line at 45 s never left. Bob, who heard Alice last at
# 5 s, gave up at 35 s. With equal timeouts the liveness timeout fires just
# after the hole closes, so a peer rarely sends into a closed hole; a
# liveness timeout longer than the NAT's leaves a window where lines vanish
# silently.
#
# ## Exercise: choose a heart-beat interval
#
# Write `heartbeat_interval(nat_timeout, peer_timeout, loss)`: the seconds
# between heart-beats (to the partner and to the server) for two peers
# behind port-restricted cones that forget after `nat_timeout` seconds, a
# liveness timeout of `peer_timeout` seconds, and a share `loss` of the
# datagrams lost on the internet. The check connects two simulated peers
# with your interval, keeps them silent for longer than either timeout,
# then sends lines both ways. A case fails if a NAT dropped anything, if a
# peer declared the other gone, or if the beats cost more than ten per
# timeout (the shorter one). Think about which datagrams loss can take away
# from a NAT's timer, and which from a peer's.


# %% tags=["exercise-stub", "exercise:11-heartbeat-interval"]
def heartbeat_interval(nat_timeout, peer_timeout, loss):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:11-heartbeat-interval"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["11-heartbeat-interval"]()
exercise.check()

# %% [markdown]
# ## Summary
#
# * A NAT forgets a silent UDP flow: RFC 4787 §4.3 asks for at least two
#   minutes (five recommended), refreshed by outbound traffic; Linux keeps an
#   unanswered flow 30 s and an answered one 120 s.
# * The timer is per flow: heart-beats to the server keep the mapping and the
#   server's permission, not a silent partner's. Only a full cone, which
#   filters nothing, stays open to the partner (and to everyone).
# * punchlab beats every 3 s (the Go client too), ICE every 15 s; a peer
#   declares its partner gone after 30 s of silence, one one-way trip after
#   the partner's NAT closed the hole when both timeouts are 30 s.
# * A heart-beat refreshes the sender's own NAT even if it is lost later; the
#   partner's liveness timeout needs beats that arrive, so loss asks for more
#   of them per timeout.
#
# ## What comes next
#
# Measure your own NAT. `punchlab peer` is a scripted peer: with
# `--heartbeat 0` it sends no heart-beats at all, and with `--rounds 4
# --silence 60` it exchanges a line with its partner (`--connect ID` on one
# side) after each minute of silence, printing each round as JSON and
# exiting 1 when a round got no answer. Run it across your home router with
# longer and longer silences to find when your NAT forgets. On the kernel's
# NAT (notebook 8), `sysctl net.netfilter.nf_conntrack_udp_timeout` is the
# number to beat.
#
# [Chapter 12](12-one-nat-for-the-class.ipynb) puts a whole class behind one
# NAT, and homes behind their provider's NAT.
