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
# Here Bob sits at the end of a slow 30 ms link to his router, so the
# introduction reaches him late. Before, each NAT's table knows only the
# server:

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
# Her first two `HELLO`s reach NAT B before Bob has sent anything to her,
# and NAT B drops them; Bob's first `HELLO` goes through NAT A, which Alice
# had already opened, and the punch succeeds.
#
# After, each NAT also lists the other side's public address among the
# remotes its inside host has sent to, so each lets the other in:

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
# Both diagrams share one time axis, in ms from the moment Alice asks the
# server to connect:

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
# ## The peer's state machine
#
# Everything a peer does follows one table of transitions (the code, the tests
# and this picture all read the same table):

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
# Next: [5. Chatting](05-chat.ipynb).
