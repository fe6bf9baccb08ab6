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
# # 10. When punching gets hard
#
# By the end of this notebook you will be able to:
#
# * say which pairs of NATs a punch alone cannot connect, and why;
# * predict a NAT's next port when it counts up, and see the guess land;
# * compute and measure the odds of a *birthday* punch, and say what its
#   probes cost;
# * say when only a relay is left, and what it costs;
# * choose the next rung of the traversal ladder from what both sides know.
#
# Notebook 5 left some cells of the matrix at `no`: a port-restricted cone
# (`EIM/APDF`) facing a NAT that maps per destination, and two such NATs
# facing each other. Those are not "beyond hole punching". RFC 5128 §3 lists
# port prediction among the punching techniques, and Tailscale punches
# easy-versus-hard pairs by the birthday paradox ("How NAT traversal works",
# 2020). Only two hard sides need a relay (TURN, RFC 8656; Tailscale's DERP).
#
# punchlab's peer climbs a **traversal ladder** (DESIGN.md §7): the direct
# punch first; when it has not worked after a second, the rung both sides
# choose from what they know; the server's relay last. Every result says
# which route won: `direct`, `peer-reflexive`, `predicted`, `birthday` or
# `relayed`.
#
# **Predict first.** Alice sits behind a port-restricted cone. Bob's NAT maps
# per destination, but hands out its ports in order, counting up. Which
# route will they connect by? And two symmetric NATs?

# %%
from punchlab.exercises_ladder import route_question
from punchlab.sim import nat_config

COUNTING = nat_config("symmetric", allocation="sequential", name="symmetric, counting")
route_question(lambda: "port-restricted-cone", lambda: COUNTING)

# %%
route_question(lambda: "symmetric", lambda: "symmetric")

# %% [markdown]
# ## The punch alone, then the ladder
#
# Each pair below is run twice on the simulator: once with the ladder off
# (`PeerConfig(ladder=False)`, the punch of notebooks 4 to 6), once with it.
# With `discover=True` the server is also an RFC 5780 server (notebook 9)
# and both peers run the mapping tests after registering, as real punchlab
# peers do.

# %%
from punchlab.peer import PeerConfig
from punchlab.sim import punch

PAIRS = [
    ("port-restricted-cone", "port-restricted-cone"),
    ("port-restricted-cone", COUNTING),
    ("port-restricted-cone", "symmetric"),
    ("symmetric", "symmetric"),
]
alone = PeerConfig(ladder=False)
for a, b in PAIRS:
    print("punch alone: ", punch(a, b, discover=True, config=alone).summary())
    print("with ladder: ", punch(a, b, discover=True).summary())
    print()

# %% [markdown]
# ## How both sides choose the same rung
#
# The rung depends on both NATs, and each peer knows only its own, from the
# mapping tests of RFC 5780 §4.3 (notebook 9): endpoint-independent mapping
# is *easy*, a mapping per destination address (or address and port) is
# *hard*. Once introduced, each peer sends the other a short NAT report
# through the server's relay. The report also says how the NAT allocated the
# ports the tests saw: the same port every time, counting up, or at random.
# Both sides then apply the same rule, `punchlab.traversal.next_rung`, to the
# same two reports, and so choose complementary rungs without another
# round trip:
#
# * one side hard and counting: **predict** (the easy side aims at the next
#   ports);
# * one side hard and random: **birthday** (the hard side opens many ports,
#   the easy side probes);
# * both hard, or either unknown: **relay**.
#
# Here are the two reports for the counting pair, as they crossed the relay:

# %%
counting = punch("port-restricted-cone", COUNTING, seed=0, discover=True)
alice, bob = counting.network.peers
print("Alice's NAT report:", alice.core.nat.encode())
print("Bob's NAT report:  ", bob.core.nat.encode())
print("Alice's rung:", alice.core.rung.value)
print("Bob's rung:  ", bob.core.rung.value)

# %% [markdown]
# The drawing below is the same state table the peer runs (notebook 4 drew
# its first part): from `punching`, the peer moves to the rung it chose, and
# from a guessing rung that runs out, to the relay.

# %%
from punchlab.diagram import state_diagram

_ = state_diagram(ladder=True)

# %% [markdown]
# ## Port prediction
#
# Bob's NAT counts up. The mapping tests saw three consecutive ports (three
# destinations, three mappings), so Bob reported the last one and the step.
# His HELLO to Alice then opened the *next* port, which Alice, aiming HELLOs
# at the next few ports after the last one reported, hits. Bob's NAT table
# shows all of it: the mappings the tests made, then the one toward Alice.

# %%
print(counting.network.nat("NAT B").show(counting.network.now))
print()
print("Alice aims at:", alice.core.partner_nat.predicted_ports(PeerConfig().predict_window))
print("Bob is at:    ", alice.peer_address)

# %% [markdown]
# The sequence diagram starts where the direct punch gave up (after
# `direct_timeout`, 1 s): Alice's HELLOs to the predicted ports, all but one
# dropped by Bob's NAT (no mapping there), and the one let in.

# %%
from punchlab.diagram import sequence_diagram
from punchlab.messages import format_address

told = format_address(alice.core.introduced_address)
aimed = [e for e in counting.trace if e.actor == "A" and e.msg_type == "HELLO" and e.dst != told]
first = aimed[0].time
_ = sequence_diagram(
    counting.trace,
    types=["HELLO", "SUCCESS"],
    time_range=(first - 0.01, first + 0.12),
)

# %% [markdown]
# ## Birthday probing
#
# Against a NAT that picks ports at random there is nothing to predict; but
# the easy side's address is fixed. So the hard side opens k sockets (256 by
# default) and sends a HELLO from each to the easy side's address: its NAT
# now has k random ports open toward it. Once told (`PORTS-OPEN`, through the
# relay), the easy side sends HELLOs ("probes") to random ports of the hard
# side's IP address until one lands on an opened port. Each probe hits with
# chance k/N, N being the number of ports the NAT picks from (64,512 here:
# 1,024 to 65,535, as Linux's `masquerade random` does), so n probes find
# one with chance 1 - (1 - k/N)^n: the birthday paradox, as Tailscale puts
# it.
#
# **Predict first**: with 256 ports open, in what share of punches does a
# probe hit within 174 probes?

# %%
from punchlab.exercises_ladder import birthday_question

birthday_question(lambda: 256, lambda: 174)

# %% [markdown]
# `birthday_curve` measures it: each trial builds a fresh simulated NAT that
# allocates at random, opens 256 mappings through it, and lets the probes
# through the NAT's own filter until the first is let in; every probe count
# is read from the same trials.

# %%
from punchlab.sim import birthday_curve

PROBES = (16, 32, 64, 128, 174, 256, 512, 1024)
curve = birthday_curve(256, PROBES, trials=1000, seed=0)
print(curve.text())

# %% [markdown]
# The same on the kernel's real NATs: `punchlab netlab birthday` runs the
# hard side behind `masquerade random`, the easy side behind a
# port-restricted cone, and counts the probes until a hard-side socket
# receives one. The figure puts the three side by side: the formula (line),
# the simulator (circles) and the lab's recorded runs (squares, with the
# number of runs and the command that measured them in the caption).

# %%
import matplotlib.pyplot as plt

from punchlab.netlab.birthday import recorded_measurement
from punchlab.sim import birthday_formula

lab = recorded_measurement()
fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
xs = range(1, 1025)
formula = [birthday_formula(curve.open_ports, n, curve.port_range) for n in xs]
ax.plot(xs, formula, color="#0072B2", label="formula 1-(1-k/N)^n")
ax.plot(PROBES, curve.success, "o", color="#E69F00", label=f"simulator ({curve.trials} trials)")
ax.plot(lab.probes, lab.success, "s", color="#009E73", mfc="none", mew=2,
        label=f"real kernel NATs ({lab.runs} runs)")  # fmt: skip
ax.set_xscale("log", base=2)
ax.set_xlabel("probes sent")
ax.set_ylabel("share of punches with a hit")
ax.set_title("Birthday probing, k = 256 ports open")
ax.legend(loc="upper left")
ax.grid(alpha=0.3)
print("lab measured with:", lab.command)

# %% [markdown]
# Try other numbers: fewer open ports, more probes. Each move of a slider
# measures 300 fresh simulated punches and sets them beside the formula.

# %%
from punchlab.exercises_ladder import birthday_explorer

birthday_explorer()

# %% [markdown]
# A whole birthday punch on the simulator: Bob (symmetric) opens his ports,
# Alice probes. The trace folds each burst into one entry with a count, so a
# thousand probes do not push everything else out of it; the diagram draws
# the burst once, with a bar on Alice's lifeline for as long as she probed.

# %%
birthday = punch("port-restricted-cone", "symmetric", seed=0, discover=True)
print(birthday.summary())
start = birthday.network.peers[1].core.connected_at - birthday.time_to_connect
_ = sequence_diagram(
    birthday.trace, types=["HELLO", "SUCCESS"], time_range=(start + 1.0, start + 2.5), collapse=True
)

# %% [markdown]
# ## What each route costs
#
# Probing is not free. Each probe is a datagram, and they are **paced**
# (`PeerConfig.probe_rate`, 250 a second by default, at most
# `probe_limit` = 1,024 of them): a burst of a thousand datagrams to random
# ports of one address looks like a port scan to a firewall, and fills the
# NATs' tables on the way. The table below counts, for one run of each
# route, the time from Alice's request to both sides connected, and the
# datagrams the two peers sent on the way (a folded entry counts as many as
# it stands for).

# %%
from punchlab.display import text_table


def cost(result):
    ended = max(p.connected_at for p in result.network.peers)
    sent = [
        e
        for e in result.trace
        if e.kind == "sent" and e.actor in ("A", "B") and e.msg_type != "HTTP" and e.time <= ended
    ]
    asked = ended - result.time_to_connect
    return sum(e.count for e in sent if e.time >= asked)


rows = [["route", "time to connect", "datagrams sent"]]
for a, b in [
    ("port-restricted-cone", "port-restricted-cone"),
    ("symmetric", "restricted-cone"),
    ("port-restricted-cone", COUNTING),
    ("port-restricted-cone", "symmetric"),
    ("symmetric", "symmetric"),
]:
    result = punch(a, b, seed=0, discover=True)
    rows.append([result.route_text(), f"{result.time_to_connect * 1000:.0f} ms", str(cost(result))])
print(text_table(rows))

# %% [markdown]
# The ladder costs time before it costs datagrams: every rung past the
# direct one starts after `direct_timeout` (1 s), and the relay costs on
# every line after that too, because each datagram goes to the server and
# back out (`make bench` measures the routes over many seeds:
# `bench/routes.py`).
#
# ## The relay
#
# Two symmetric NATs each pick a new random port for the other side; guessing
# one random port from another is hopeless, so they relay. A relayed datagram
# is a RELAY message to the server carrying the whole message for the
# partner and the introduction's token. The server forwards it only between
# the two peers it introduced, only to the address each registered from, at
# most 1,024 bytes each and 50 a second, and never sends an address more
# than it sent (DESIGN.md §8): the receiver returns an empty RELAY for each
# one, which earns it the next. The relayed chat keeps trying the direct
# path every 5 s and moves over when it opens.
#
# What the relay costs on every line: the time from Alice sending her first
# line of chat to Bob receiving it, direct between two port-restricted cones
# and relayed between two symmetric NATs (the internet's one-way latency is
# 20 ms here).


# %%
def line_delay(run):
    """Alice's first TEXT (alone or inside a RELAY), from sent to delivered at B."""
    chat = [e for e in run.trace if "TEXT" in e.msg_type + e.payload and e.actor in ("A", "B")]
    sent = next(e.time for e in chat if e.actor == "A" and e.kind == "sent")
    got = next(e.time for e in chat if e.actor == "B" and e.kind == "delivered")
    return got - sent


direct = punch("port-restricted-cone", "port-restricted-cone", seed=0, discover=True, texts=1)
relayed = punch("symmetric", "symmetric", seed=0, discover=True, texts=1)
for run in (direct, relayed):
    print(f"{run.route_text():8}: a line takes {line_delay(run) * 1000:.0f} ms")

# %% [markdown]
# The relayed lines' journey: Alice's and Bob's first lines, each to the
# server inside a RELAY and on to the other, and the empty RELAY ("credit")
# each side returns for each one it receives, which earns it the next:

# %%
chat = [e for e in relayed.trace if e.actor == "A" and "TEXT" in e.payload]
_ = sequence_diagram(relayed.trace, types=["RELAY"], time_range=(chat[0].time, chat[0].time + 0.06))

# %% [markdown]
# ## Exercise: choose the next rung
#
# Write `choose_rung(mine, partner)`: given both sides' NAT reports (each a
# dict with `"mapping"` and `"allocation"`, or `None` when nothing is
# known), return the rung this side climbs to once the direct punch failed:
# `"predict-aim"`, `"predict-open"`, `"birthday-probe"`, `"birthday-open"`
# or `"relay"`. The check compares your answers with the peer's own rule.


# %% tags=["exercise-stub", "exercise:10-choose-the-rung"]
def choose_rung(mine, partner):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:10-choose-the-rung"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["10-choose-the-rung"]()
exercise.check()

# %% [markdown]
# ## Summary
#
# * A punch alone cannot connect an `EIM/APDF` side with a side that maps per
#   destination, nor two such sides; the ladder connects every pair of the
#   matrix (notebook 5 draws the routes).
# * Both peers choose the next rung from the same two NAT reports (RFC 5780's
#   mapping tests, sent through the relay): prediction for a NAT that counts
#   up, birthday probing for one that picks at random, the relay for two hard
#   sides or when nothing is known.
# * The birthday odds follow 1 - (1 - k/N)^n: about half the punches hit
#   within 174 probes and 98% within 1,024 for k = 256, on the simulator and
#   on the kernel's NATs alike.
# * Probes are paced and capped, carry the introduction's token and go only to
#   the introduced peer's address; the relay is authenticated, bounded, and
#   costs latency on every line, so a relayed chat keeps looking for the
#   direct path.
#
# ## What comes next
#
# Try the ladder on the kernel's own NATs: `sudo punchlab netlab punch
# --nat-a port-restricted-cone --nat-b symmetric` names the route it took,
# and `sudo punchlab netlab birthday --runs 50` measures the odds yourself.
# Notebook 8 shows how to read such a run's packet capture.
#
# Once connected, a chat must stay connected: [chapter
# 11](11-timeouts-and-keepalives.ipynb) is about the NAT forgetting a silent
# flow, and the heart-beats that stop it.
