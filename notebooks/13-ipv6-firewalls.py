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
# # 13. IPv6: no translation, still a firewall
#
# By the end of this notebook you will be able to:
#
# * say what IPv6 removes from the punching problem (address translation, and
#   with it port prediction and hairpinning) and what it leaves (a stateful
#   filter, timeouts);
# * read a trace in which a home gateway passes datagrams on unchanged and
#   drops the ones nobody inside asked for;
# * predict whether a datagram gets through an IPv6 firewall from its
#   filtering and from what the host behind it sent, and check it.
#
# **What changes.** An IPv6 host has a global address of its own: its home
# network gets a /64 and every interface forms addresses in it (RFC 4291
# §2.5.1, RFC 4862). The home gateway routes; it rewrites no address and no
# port. So the address the rendezvous server sees is the host's own, the
# port is the one the socket bound, and nothing depends on a NAT's port
# allocation: no port prediction, no birthday probing (notebook 10). Two
# hosts of one home reach each other on their own link (RFC 4861 §5.2), so
# hairpinning, RFC 4787 REQ-9's concern, has no place either.
#
# **What does not.** The gateway still filters. RFC 6092 ("simple security"
# for residential IPv6 gateways) has it drop unsolicited inbound traffic and
# let in what belongs to a flow a host inside opened. Its UDP filters (§3.2.3)
# use RFC 4787's terms: REC-17 recommends *endpoint-independent* filtering
# where applications matter most (the DEFAULT of a gateway no provider
# manages) and *address-dependent* filtering where a stricter filter does;
# REC-14 keeps an idle flow at least two minutes (five by DEFAULT), and
# REC-16 refreshes it with every outbound packet. Linux gateways (OpenWrt's
# firewall, and the lab's nftables rule below) track each flow by both
# endpoints, address and port: *address-and-port-dependent* filtering, as a
# port-restricted cone filters, stricter than either recommendation. There
# a datagram from a peer gets in only once the host behind has sent one to
# that peer: **both sides must still punch**.
#
# The simulator models such a gateway (`punchlab.sim.firewall.Firewall`): a
# stateful filter in front of a /64, with RFC 4787's three filtering
# behaviours and a state timeout (RFC 6092's defaults: endpoint-independent,
# five minutes), and no translation.
# Addresses come from the documentation prefix 2001:db8::/32 (RFC 3849): the
# server at 2001:db8::1, Alice (A) in 2001:db8:1::/64, Bob (B) in
# 2001:db8:1:1::/64.
#
# **Predict first.** Both gateways filter address-and-port-dependent, as
# Linux's do: the strictest kind. Which route will Alice and Bob connect by?

# %%
from punchlab.exercises_ipv6 import v6_route_question

APDF = "address-and-port-dependent"
v6_route_question(lambda: APDF, lambda: APDF)

# %% [markdown]
# ## The punch, untranslated
#
# `punch_v6` runs the same experiment as notebook 4's `punch`: both peers
# register, Alice asks the server for Bob, both punch, then they chat.

# %%
from punchlab.sim.ipv6 import punch_v6

plain = punch_v6(APDF, APDF)
print(plain.summary())
alice, bob = plain.network.peers
print("Alice's own address:             ", alice.address)
print("what the server registered:      ", plain.network.servers[0].core.lookup(alice.id).address)
print("what the server told Bob (INITIATE_CHAT):", bob.core.introduced_address)

# %% [markdown]
# The three agree: the server sees Alice's own address, and tells Bob that.
# Here is Alice's registration crossing her gateway: it is *passed*, not
# translated, and opens a flow from her port 5000 to the server.

# %%
from punchlab.messages import format_address
from punchlab.trace import Trace

mine = format_address(alice.address)
registration = Trace(
    e for e in plain.trace if e.msg_type == "REGISTRATION" and mine in (e.src, e.dst)
)
print(registration.table())
print()
print(plain.network.nat("firewall A").show(plain.network.now))

# %% [markdown]
# Alice's gateway now holds one flow for her port 5000, with two remotes: the
# server, and Bob, whom her HELLOs went to. Only those two may send to her
# port. Nothing in the table maps a port: the first column is both her inside
# and her public endpoint.
#
# ## A HELLO that comes too early
#
# Above, both HELLOs left at the same moment and crossed. Now Bob's Wi-Fi is
# slow (30 ms each way instead of 1 ms), so Bob hears of the introduction
# later than Alice hears of Bob. **Predict**: does Alice's first HELLO get
# through Bob's gateway?

# %%
from punchlab.exercises_ipv6 import first_hello_question

first_hello_question(lambda: APDF, lambda: 0.03)

# %%
from punchlab.sim.ipv6 import firewall_drops

slow = punch_v6(APDF, APDF, lan_b=0.03)
print(slow.summary())
for gateway, kind, reason in firewall_drops(slow):
    print(f"{gateway} dropped a {kind}: {reason}")

# %% [markdown]
# The sequence diagram, from the introduction on. Alice's first two HELLOs
# end at Bob's gateway (the crosses): Bob had sent nothing to Alice yet, so
# no flow let them in. Then Bob's own HELLO leaves; crossing his gateway it
# opens the flow, and Alice's next HELLO gets in and is answered with
# SUCCESS. (Each gateway notes, once, the address it passes on: "not
# translated".)

# %%
from punchlab.diagram import sequence_diagram

asked = next(e.time for e in slow.trace if e.msg_type == "INITIATE_CHAT")
start = asked - slow.trace.events[0].time
_ = sequence_diagram(
    slow.trace,
    types=["INITIATE_CHAT", "HELLO", "SUCCESS"],
    time_range=(start - 0.01, start + 0.15),
    addresses=True,
    title="IPv6: the first HELLOs are dropped at firewall B until B punches",
)

# %% [markdown]
# The firewall dropped, it did not translate; yet this is the picture of
# notebook 4 behind two port-restricted cones. Punching is what opens an IPv6
# firewall, just as it opens a NAT's filter.
#
# ## Endpoint-independent filtering
#
# RFC 6092's REC-17 makes endpoint-independent filtering the default of a
# gateway that no provider manages, for applications' sake. Then a flow,
# once open, takes datagrams from anyone. Bob opened one when he registered
# (from port 5000, to the server). **Predict**: with endpoint-independent
# filtering at Bob's gateway, does Alice's first HELLO get in, Wi-Fi as slow
# as before?

# %%
EIF = "endpoint-independent"
first_hello_question(lambda: EIF, lambda: 0.03)

# %% [markdown]
# The three behaviours side by side, Bob's Wi-Fi slow, each a fresh run:
# how many of Alice's HELLOs Bob's gateway dropped, and the route.

# %%
from punchlab.display import text_table

rows = [["Bob's gateway filters", "HELLOs dropped", "result"]]
for filtering in (EIF, "address-dependent", APDF):
    run = punch_v6(APDF, filtering, lan_b=0.03)
    rows.append([filtering, str(len(firewall_drops(run))), run.summary().split(": ", 1)[1]])
print(text_table(rows))

# %% [markdown]
# Every pair connects directly: with no translation there is nothing to
# guess, and the first HELLO each way opens the way for the other. The
# filtering decides only how many of the first HELLOs are wasted. Behind an
# endpoint-independent gateway (RFC 6092's default) Bob's registration had
# already opened his port to everyone, a full cone without the NAT; an
# address-dependent gateway lets Alice in once Bob has sent anything to her
# address, whatever port: here that is his first HELLO, so it drops as many
# as the strict one.
#
# ## Timeouts still apply
#
# A way in lives `timeout` seconds after the host's last datagram out to
# that remote (REC-14: at least two minutes, five by default; REC-16:
# outbound packets refresh it; Linux's conntrack gives an unanswered UDP flow
# 30 s, an answered one 120 s). Each remote's way in times out on its own,
# as each conntrack entry does, so beats to the server keep only the
# server's (chapter 11); an endpoint-independent filter needs only the flow
# to live. The gateway forgets on its own clock, as a NAT forgets a mapping
# (notebook 1). Here is one gateway on its own, set to the two
# minutes REC-14 allows at least: Bob sends to Alice once, then nothing.

# %%
from punchlab.sim.firewall import Firewall, firewall_config

prefix = plain.network.nat("firewall B").prefix
gateway = Firewall("firewall B", prefix, firewall_config(APDF, timeout=120.0))
gateway.outbound(bob.address, alice.address, 0.0)
for t in (1.0, 119.0, 120.0):
    print(f"at {t:5.1f} s Alice's datagram to Bob:", gateway.admit(alice.address, bob.address, t))

# %% [markdown]
# So a silent IPv6 chat needs keepalives as much as one through a NAT:
# punchlab's peers send a HEART-BEAT every 3 s once connected.
#
# ## Exercise: does it get through?
#
# Write `gets_in(filtering, timeout, sent, arriving)` for Bob's gateway:
# `filtering` is one of RFC 4787's three behaviours, `timeout` the flow's
# lifetime in seconds, `sent` what Bob sent out before, a list of
# `(time, Bob's port, remote (ip, port))`, and `arriving` one datagram,
# `(time, source (ip, port), Bob's port)`. Return `True` if it gets in.
# Remember: a way in belongs to one of Bob's ports. A datagram Bob sent out
# of it opens the way for `timeout` seconds: to its remote endpoint alone
# (address-and-port-dependent), to any port of its remote's address
# (address-dependent), or to anyone (endpoint-independent). The check
# compares your answers with the simulator's `Firewall`.


# %% tags=["exercise-stub", "exercise:13-gets-in"]
def gets_in(filtering, timeout, sent, arriving):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:13-gets-in"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["13-gets-in"]()
exercise.check()

# %% [markdown]
# ## Summary
#
# * With IPv6 nothing is translated: the address the server sees and hands
#   out is the host's own, so there is no port to predict and no hairpinning
#   to need.
# * A home gateway still filters (RFC 6092 §3.2.3): unsolicited inbound UDP is
#   dropped, and a flow opened from inside lets in its remote (any remote if
#   the filtering is endpoint-independent, REC-17's default), for at least
#   two minutes after the last datagram out to it (REC-14, REC-16).
# * Behind an address- or address-and-port-dependent gateway (Linux's) both
#   peers still punch: a HELLO that arrives before the other side sent one is
#   dropped at the firewall; the other side's HELLO opens the way, and the
#   pair connects directly.
# * Timeouts still apply, and so do keepalives.
#
# ## What comes next
#
# The same on real kernels: `sudo punchlab netlab punch --ipv6` builds two
# gateways with an nftables `inet` filter (`ct state established,related
# accept`, new inbound UDP dropped), gives the peers 2001:db8 addresses, and
# punches through them; it prints the route and what the firewalls dropped.
# On your own machine, `punchlab serve --host ::` takes IPv6 and IPv4 clients
# alike, and `punchlab chat --server http://[::1]:8088` talks to it over IPv6.
