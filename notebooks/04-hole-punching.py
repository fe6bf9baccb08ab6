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
# # 4. Punching the hole: HELLO and SUCCESS
#
# By the end of this notebook you will be able to:
#
# - explain why both peers must send, and why a dropped `HELLO` does no harm;
# - point to the NAT table entry that lets the other peer in;
# - count the round trips from Alice's request to a connection;
# - say why the original client takes 3 s longer than punchlab;
# - follow a peer through its states, from `idle` to `connected`.
#
# Both peers now know each other's public address, but each NAT still drops
# packets from anyone its inside host has not talked to. The trick: **both
# send.** Alice's `HELLO` to Bob goes out through her NAT, which from then on
# lets in packets from Bob's address; Bob's `HELLO` to Alice does the same on
# his side. A peer answers a `HELLO` with `SUCCESS`; a peer that receives
# `SUCCESS` is connected.
#
# The two do not have to send at the same moment (Ford, Srisuresh and Kegel,
# "Peer-to-Peer Communication Across Network Address Translators", USENIX
# 2005, §3). Whoever sends first may see its `HELLO` dropped by the other NAT,
# which has not opened yet; but that `HELLO` has opened its own NAT, so the
# other side's `HELLO` gets in, and retries do the rest.
#
# Both NATs here are port-restricted cone NATs: in RFC 4787 terms,
# endpoint-independent mapping (§4.1), so one inside endpoint keeps one public
# port whatever the destination, and address-and-port-dependent filtering (§5),
# so a datagram gets in only from an `ip:port` the inside host has sent to.
#
# Here Bob sits at the end of a slow 30 ms link to his router, so the
# introduction reaches him late. Before, each NAT's table knows only the
# server: look at `remotes`, the filter. The last column counts down from
# the NAT's 120 s timeout (RFC 4787 §4.3, REQ-5, asks for at least two
# minutes); every outgoing datagram restarts it.

# %%
from punchlab.scenes import registered

NAT_A_KIND = NAT_B_KIND = "port-restricted-cone"
BOB_LAN_LATENCY = 0.03  # seconds, one way, between Bob and his router

# A server, Alice behind NAT A, Bob behind NAT B on his slow link; both register.
scene = registered(NAT_A_KIND, NAT_B_KIND, bob_lan_latency=BOB_LAN_LATENCY)
net, nat_a, nat_b = scene.net, scene.nat_a, scene.nat_b
print(nat_a.show(net.now))
print(nat_b.show(net.now))

# %% [markdown]
# Alice asks to talk to Bob. **Predict first**, before you run the cell
# below the question: Alice sends her first `HELLO` as soon as the server
# answers her. Will NAT B drop it?

# %%
from punchlab.exercises import first_hello_question

first_hello_question(lambda: NAT_A_KIND, lambda: NAT_B_KIND, lambda: BOB_LAN_LATENCY)

# %%
from punchlab.diagram import sequence_diagram
from punchlab.scenes import ask_for_bob

# Alice asks the server for Bob; the network runs on for one virtual second.
scene = ask_for_bob(scene)
print("connected:", scene.alice.connected and scene.bob.connected)
origin = net.trace[0].time
window = (scene.asked - origin - 0.001, scene.asked - origin + 0.135)
kinds = ["HTTP", "INITIATE_CHAT", "HELLO", "SUCCESS"]
_ = sequence_diagram(net.trace, types=kinds, time_range=window)

# %% [markdown]
# Time runs down, in ms; Alice asks at 1000. The figure
# shows a dropped `HELLO`, twice: the two crosses on NAT B's line, labelled
# "filtered by NAT".
#
# Her first two `HELLO`s reach NAT B before Bob has sent anything to her,
# and NAT B drops them; Bob's first `HELLO` goes through NAT A, which Alice
# had already opened, and the punch succeeds. Once Bob's `HELLO` has left
# through NAT B, Alice's address is in NAT B's `remotes`, and her third
# `HELLO`, 40 ms after her second, gets through. When Bob's `HELLO` reaches
# Alice, two lines leave her together: a `SUCCESS` and a `HELLO` of her own.
#
# After, each NAT also lists the other side's public address among the
# remotes its inside host has sent to, so each lets the other in. The
# `outside` column has not changed: endpoint-independent mapping reused the
# mapping made for the server, so the address the server handed out was right.
# Each remote also has its own timer, as each flow has in Linux conntrack: a
# remote sent to less recently than the last one shows when its own
# permission closes (notebook 11 is about those timers):

# %%
print(nat_a.show(net.now))
print(nat_b.show(net.now))

# %% [markdown]
# The same two NATs with equal links, as `punch` builds them: 20 ms across
# the internet and 1 ms behind each NAT, so a round trip from A to B takes
# 44 ms. **Predict first**: from the moment A asks the server, how many of
# those round trips pass until both sides are connected? (Count the trips:
# the request to the server, the introduction, the `HELLO`s, the `SUCCESS`es.)

# %%
from punchlab.exercises import round_trips_question

SEED = 0
round_trips_question(lambda: NAT_A_KIND, lambda: NAT_B_KIND, lambda: SEED)

# %%
from punchlab.sim import punch

result = punch(NAT_A_KIND, NAT_B_KIND, seed=SEED)
print(result.summary())
round_trip = 2 * result.network.base_latency("A", "B")
print(f"round trips: {result.time_to_connect / round_trip:.1f}")

# %% [markdown]
# Both sides connected in 86 ms, then exchanged 5 chat lines each; 86 ms is
# 2.0 round trips of 44 ms. Each leg between a peer and the server takes
# 21 ms. The server's answer to Alice and its `INITIATE_CHAT` to Bob leave
# together, so after one round trip both know the other's address. Each
# `HELLO` opens its own NAT long before the other's
# arrives, so none is dropped, and the `SUCCESS`es bring the second round
# trip.

# %% [markdown]
# ## The original algorithm against punchlab's
#
# The original Go client waited 3 seconds before its first `HELLO`, then sent one
# every 3 seconds. punchlab sends the first `HELLO` at once, retries after 20,
# 40, 80 ms… and answers a `HELLO` with `SUCCESS` *and* a `HELLO` of its own, so
# the other side does not wait for its own retry. Same NATs, same network:

# %%
original = punch("port-restricted-cone", "port-restricted-cone", seed=0, seed_compatible=True)
for name, run in (("original", original), ("punchlab", result)):
    print(f"{name:9} {run.time_to_connect * 1000:7.0f} ms")

# %% [markdown]
# The two times differ by exactly 3000 ms: the original's wait of
# `PeerConfig().original_interval` (3 s) before its first `HELLO`. Here the
# `HELLO` sent in answer changes nothing, since both `HELLO`s get through. It
# matters when one side's `HELLO`s were dropped, as Alice's were above:
# without it, that side waits for its own next retry. ICE, which WebRTC uses,
# does the same under the name *triggered
# check*: an agent that receives a check on a pair of addresses queues its own
# check on that pair (RFC 8445 §7.3.1.4).
#
# Both diagrams share one time axis, in ms from the moment Alice asks the
# server to connect. `compress=False` keeps idle time at full length. On the
# left, the HTTP exchange and `INITIATE_CHAT` sit at the top, nothing happens
# for 3 s, and `HELLO` and `SUCCESS` cross near the bottom. On the right,
# everything is squeezed into the first tenth of a second. `HELLO x4` means four
# identical datagrams from one sender folded into one arrow (`collapse=True`).

# %%
import matplotlib.pyplot as plt
from matplotlib.ticker import MultipleLocator, ScalarFormatter


def from_request(run):
    """The run's trace from the moment A sent start-communication."""
    asked = next(
        e.time for e in run.trace if e.msg_type == "HTTP" and "start-communication" in e.payload
    )
    return run.trace.filter(time_range=(asked, float("inf")))


fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 6), sharey=True, layout="constrained")
for ax, run, title in ((left, original, "original: 3 s ticker"), (right, result, "punchlab")):
    _ = sequence_diagram(
        from_request(run), ax, types=kinds, collapse=True, compress=False, title=title
    )
left.set_ylim(original.time_to_connect * 1000 + 100, -50)
left.yaxis.set_major_locator(MultipleLocator(500))
left.yaxis.set_major_formatter(ScalarFormatter())
right.set_ylabel("")

# %% [markdown]
# ## The same punch in Wireshark
#
# Every networking tool reads pcap files, and a trace can be written as one:
# each datagram becomes a real IP and UDP packet, once for every link it
# crossed (the LAN behind a NAT, the internet), so the rewrite each NAT made
# shows as two packets with different addresses. The cell below saves the
# first scene's trace (Bob on his slow link) and prints its first `HELLO`
# packets the way Wireshark lists them. Look at Alice's first `HELLO`: it is
# on `NAT A LAN` from `10.0.1.2:5000`, then on the `internet` from NAT A's
# public address, and never on `NAT B LAN`, because NAT B dropped it (the
# first cross of the diagram above).
#
# Open the file in Wireshark (or `tshark -r FILE`); to see the JSON inside,
# tell it which ports carry JSON with the `-d` options printed below
# (*Decode As* in the menus), then filter with, for example,
# `json.value.string == "HELLO"` or `frame.interface_name == "NAT B LAN"`.

# %%
from pathlib import Path

from punchlab.pcap import capture_table, decode_rules, sightings

Path("captures").mkdir(exist_ok=True)
written = net.trace.save_pcap("captures/04-hole-punching.pcapng")
print(f"tshark -r {written} " + " ".join(f"-d {rule}" for rule in decode_rules(net.trace)))
hellos = [s for s in sightings(net.trace) if s.data.startswith(b'{"type":"HELLO"')]
print(capture_table(hellos, limit=8))

# %% [markdown]
# ## The peer's state machine
#
# Everything a peer does follows one table of transitions (the code, the tests
# and this picture all read the same table, `STATES` in
# `punchlab/peer_table.py`). The yellow box is where peer A of the `punch` run
# ended: `connected`.
#
# - `idle`: not registered yet.
# - `registering`: sends `REGISTRATION`, retrying; `failed` after 6 tries.
# - `registered`: has an identifier, waits to be introduced.
# - `punching`: sends `HELLO`s until a `SUCCESS`, or fails after 10 s
#   (`punch_timeout`).
# - `connected`: chats; a peer silent for 30 s (`peer_timeout`) means
#   `disconnected`.
# - `failed`, `disconnected`: can be introduced again.
# - `closed`: reachable from every other state, hence the single "close" label.

# %%
from punchlab.diagram import state_diagram

_ = state_diagram(highlight=result.state_a)

# %% [markdown]
# ## Exercise: the HELLO retry schedule
#
# punchlab's peer sends its first `HELLO` at once, then waits
# `PeerConfig().hello_first_retry` (20 ms) before the next, and doubles the
# wait after every `HELLO`, but never waits longer than
# `PeerConfig().hello_max_interval` (0.5 s). Write `hello_delays(n)`: it
# returns a list of the first `n` waits, in seconds (`hello_delays(3)` starts
# `[0.02, ...]`). The check compares your list with the schedule the peer
# itself follows (`punchlab.policy.PUNCHLAB.next_hello`).


# %% tags=["exercise-stub", "exercise:04-hello-schedule"]
def hello_delays(n):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:04-hello-schedule"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["04-hello-schedule"]()
exercise.check()

# %% [markdown]
# ## Summary
#
# - Before the punch each NAT's table listed only the server; after it, also
#   the other peer's public address, on the same outside port.
# - NAT B dropped Alice's first two `HELLO`s, and the punch still succeeded:
#   the peers need not send at the same moment.
# - On equal links, `punch` connected in 86 ms, 2.0 round trips.
# - The original 3 s ticker took 3086 ms on the same network.
# - The peer's state diagram is drawn from `punchlab/peer_table.py`.
#
# ## What comes next
#
# Here both NATs kept one public port for every destination. Chapter 5,
# [Which NATs can talk: the success matrix](05-nat-types.ipynb), tries every
# RFC 4787 mapping and filtering behaviour on each side, and shows why
# address-and-port-dependent mapping defeats the original algorithm.
