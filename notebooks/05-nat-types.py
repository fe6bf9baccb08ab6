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
# # 5. Which NATs can talk: the success matrix
#
# By the end of this notebook you will be able to:
#
# * name a NAT by its RFC 4787 mapping and filtering (`EIM/APDF` and so on),
#   and say which classic name, if any, it has;
# * predict from the two behaviours whether two peers connect, and check
#   the prediction on all 81 pairs of the matrix;
# * explain why an address-and-port-dependent mapping ("symmetric") defeats
#   the original algorithm and how punchlab rescues some of those pairs;
# * estimate how many guesses port prediction needs, and classify a NAT
#   from the answers of RFC 5780's tests.
#
# Notebook 1 described a NAT by its **mapping** (RFC 4787 §4.1) and its
# **filtering** (RFC 4787 §5), and those two decide most of what follows.
# RFC 4787 asks about much more than that: how a NAT with several public
# addresses picks one (IP address pooling, REQ-2), whether it keeps the inside
# port (port preservation) and its parity (§4.2), how long a silent mapping
# lives and what refreshes it (REQ-5, REQ-6), whether two hosts behind it can
# reach each other through its public address (hairpinning, REQ-9), and how it
# handles ICMP (§9) and fragments (§10, §11).
#
# punchlab's simulated NAT models mapping, filtering, a timeout refreshed by
# outbound traffic, hairpinning (off by default), and one more setting:
# **port allocation** (keep the inside port if free, count up, or pick at
# random). Sequential against random is not an RFC 4787 category; it is the
# simulator's own setting, and it matters for port prediction (below).
#
# ## Nine NATs
#
# Three mappings times three filterings make nine NATs. The simulator names
# each by the short forms: `EIM` is endpoint-independent mapping, `ADM`
# address-dependent, `APDM` address-and-port-dependent; `EIF`, `ADF` and
# `APDF` are the same three for filtering. A NAT with endpoint-independent
# mapping keeps the inside port where it is free, as most home routers do.
# Address-dependent mapping opens a new public port for each new
# destination address, address-and-port-dependent mapping for each new
# address:port, and the simulator picks that port at random (a real NAT may
# count up instead). Four of the nine have
# classic names, printed beside them below; the other five have none.

# %%
from punchlab.sim import BEHAVIOURS, PRESETS

classic = {(c.mapping, c.filtering): name for name, c in PRESETS.items()}
for name, config in BEHAVIOURS.items():
    alias = classic.get((config.mapping, config.filtering), "")
    print(f"{name:10} {config.allocation.value:9} {alias}")

# %% [markdown]
# Every pair, Alice's NAT down the side and Bob's across the top, with
# punchlab's algorithm and with the original one. **Predict first**, before
# you run the matrix: how many of the 81 cells connect with punchlab's
# algorithm? And will Alice behind `EIM/APDF` (a port-restricted cone)
# connect with Bob behind `APDM/APDF` (symmetric)?

# %%
from punchlab.exercises import connect_question, matrix_question

matrix_question()

# %%
connect_question(
    lambda: "EIM/APDF",
    lambda: "APDM/APDF",
    "Alice behind EIM/APDF (port-restricted cone), Bob behind APDM/APDF (symmetric): "
    "will they connect?",
)

# %% [markdown]
# Each cell is one simulated run, as in notebook 4: both register, Alice
# asks for Bob, both punch for up to 10 virtual seconds, and then each sends
# five lines of chat. A cell says `yes` only if both sides connected within
# 10 s *and* at least one line of chat got through each way. The 162 runs take a second or two.
#
# This is the punch alone (`PeerConfig(ladder=False)`). When it fails,
# punchlab's peers climb further (port prediction, birthday probing, a
# relay): the end of this notebook shows where that leads, and notebook 10
# how.

# %%
from punchlab.peer import PeerConfig
from punchlab.sim import success_matrix

grid = list(BEHAVIOURS.values())
ours = success_matrix(grid, config=PeerConfig(ladder=False))
original = success_matrix(grid, seed_compatible=True)
for name, matrix in (("punchlab, punch alone", ours), ("original", original)):
    count = sum(row.count(True) for row in matrix.as_table())
    print(f"{name:21}: {count} of 81 connect")

# %% [markdown]
# The figure draws both matrices, the original algorithm on the left and
# punchlab's on the right; a blue cell says `yes`, a hatched orange cell
# says `no`.

# %%
import matplotlib.pyplot as plt

from punchlab.diagram import matrix_diagram

fig, axes = plt.subplots(1, 2, figsize=(12, 6.4), layout="constrained")
panels = ((axes[0], original, "original algorithm"), (axes[1], ours, "punchlab, punch alone"))
for ax, matrix, title in panels:
    _ = matrix_diagram(matrix, ax, title=title, rows="Alice's NAT", columns="Bob's NAT")

# %% [markdown]
# ## Reading the matrix
#
# The original algorithm connects only the top-left corner: both NATs map
# endpoint-independently. It sends every `HELLO` and every line of chat to
# the address the server saw, so it works only when that address is the one
# the other side's NAT uses for it too.
#
# punchlab connects many more. The cell below counts three groups of cells,
# straight from the matrix, so each sentence after it is checked by the run:


# %%
def count(matrix, one, other):
    """How many cells connect, of those with one side passing ``one`` and the other ``other``."""
    cells = [
        (a, b)
        for a in matrix.kinds
        for b in matrix.kinds
        if (one(a) and other(b)) or (one(b) and other(a))
    ]
    return sum(matrix.connected(a, b) for a, b in cells), len(cells)


def eim(name):
    return name.startswith("EIM")


def dependent(name):
    return not eim(name)


def port_blind(name):
    """Filters without looking at ports: endpoint-independent or address-dependent."""
    return not name.endswith("APDF")


groups = {
    "both map endpoint-independently": (eim, eim),
    "EIM and port-blind filter, with anyone": (lambda n: eim(n) and port_blind(n), bool),
    "EIM/APDF with a dependent mapping": ("EIM/APDF".__eq__, dependent),
    "both map dependently": (dependent, dependent),
    "both map dependently, both port-blind": (
        lambda n: dependent(n) and port_blind(n),
        lambda n: dependent(n) and port_blind(n),
    ),
}
for name, (one, other) in groups.items():
    print(f"{name:40} %2d of %2d connect" % count(ours, one, other))

# %% [markdown]
# * **Both map endpoint-independently** (the top-left 3 x 3): every pair
#   connects, with either algorithm. Each side's public port is the one the
#   server saw, so the `HELLO`s go to the right place, and each `HELLO` opens
#   its own side's filter for the other.
# * **An endpoint-independent mapping with a port-blind filter** (`EIM/EIF`,
#   a full cone, or `EIM/ADF`, a restricted cone) connects with every one of
#   the nine, in either role. Whatever new port the other side's `HELLO`
#   comes from, the filter lets it in, and punchlab answers that port (the
#   next section shows how).
# * **`EIM/APDF` (a port-restricted cone) with a dependent mapping**: no pair
#   connects. The dependent side's `HELLO`s leave its NAT from a new port,
#   which the `EIM/APDF` side has never sent to, so its filter drops them;
#   and its own `HELLO`s go to the port the server saw, which the other NAT
#   opened for the server alone.
# * **Both map dependently**: both sides' `HELLO`s leave from new ports and
#   arrive at the ports the server saw, where only a filter that lets in
#   strangers (`EIF`) admits them. The pairs that connect are exactly those
#   where neither side filters by port and at least one side filters
#   endpoint-independently.
#
# RFC 4787 REQ-1 asks every NAT for endpoint-independent mapping, and REQ-8
# recommends endpoint-independent filtering where transparency matters most,
# address-dependent where security does. A NAT that follows them lands in
# the top-left corner, where even the original algorithm works.

# %% [markdown]
# ## Why the original fails against a symmetric NAT
#
# A symmetric NAT opens a **new public port for every destination**. The port
# the server saw was opened for the server only. The original client keeps
# sending to that port, so its `HELLO`s are dropped. punchlab answers the port a
# valid `HELLO` *actually came from* (a "peer-reflexive" address, in ICE's
# words), which rescues every pair where the other side's filter lets that new
# port in: compare the `EIM/ADF` row (a restricted cone) in the two panels.
# The two sequence diagrams below show that row's last cell, Alice behind
# `EIM/ADF` and Bob behind `APDM/APDF`: on the left the original's `HELLO`s
# to the port the server saw end in crosses at NAT B; on the right, Alice
# answers the new port Bob's `HELLO` came from, and both connect.
#
# That rescue rests on an assumption: the symmetric NAT sends every mapping
# from the **same public IP address**. A restricted cone NAT filters by
# address only, and Alice has already sent to that address, so the new port
# gets in. RFC 4787 REQ-2 recommends exactly this ("paired" IP address
# pooling), and each simulated NAT has a single public address. A NAT that
# picked a different public address from its pool for the new mapping would
# be filtered out here too.

# %%
from punchlab.diagram import sequence_diagram

failing = original.cells[("EIM/ADF", "APDM/APDF")]
rescued = ours.cells[("EIM/ADF", "APDM/APDF")]
print("original:", failing.summary())
print("punchlab:", rescued.summary())

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 6), layout="constrained")
_ = sequence_diagram(
    failing.trace,
    left,
    types=["HELLO", "SUCCESS"],
    time_range=(3.0, 3.3),
    collapse=True,
    title="original (its first HELLO leaves after 3 s)",
)
_ = sequence_diagram(
    rescued.trace, right, types=["HELLO", "SUCCESS"], collapse=True, title="punchlab"
)

# %% [markdown]
# A port-restricted cone (`EIM/APDF`) facing a symmetric NAT still fails to
# punch: the new port is not one the port-restricted side ever sent to, so
# its filter drops it. Hole punching has a next step, and punchlab's peers
# take it (notebook 10):
#
# * **Port prediction** is itself a punching technique (RFC 5128 §3.5): guess
#   which public port the symmetric NAT will pick and send there. Sequential
#   allocation makes the guess easy. Against random allocation, the "birthday"
#   method has the symmetric side open 256 ports at once while the other side
#   probes random ones: Tailscale's "How NAT traversal works" (2020) computes
#   about a 50% chance of a hit after 174 probes and 98% after 1,024.
# * Only when **both** sides map per destination does the guessing become
#   hopeless, and the peers need a **relay**: TURN (RFC 8656), a server that
#   forwards every datagram; punchlab's rendezvous server is one.
# * A host can also ask its own router for a mapping, with the Port Control
#   Protocol (PCP, RFC 6887) or the older NAT-PMP (RFC 6886), where the
#   router supports them (punchlab does not).
#
# With those rungs every one of the 81 pairs connects. The figure runs the
# matrix again with the whole ladder (`discover=True`: each peer first learns
# its own mapping with RFC 5780's tests, notebook 9) and names each cell's
# route: `direct` to the address the server saw, `peer-reflexive` to the port
# a HELLO really came from, `birthday` probing, or `relayed`. The counts
# printed first are read from the same runs.

# %%
from collections import Counter

from punchlab.diagram import route_matrix_diagram

ladder = success_matrix(grid, discover=True)
routes = Counter(cell.route.value for cell in ladder.cells.values() if cell.connected)
print(f"{sum(routes.values())} of 81 connect:", dict(sorted(routes.items())))
fig, ax = plt.subplots(figsize=(7.5, 6.6), layout="constrained")
_ = route_matrix_diagram(
    ladder, ax, title="punchlab with its traversal ladder", rows="Alice's NAT", columns="Bob's NAT"
)
#
# ## Exercise: the odds of port prediction
#
# With random allocation, how many probes does the birthday method need?
# Say the symmetric side has opened `open_ports` mappings at random ports of
# its NAT, and the other side sends probes, each to a port it has not tried
# before, chosen at random from the `ports` the NAT allocates from. The
# simulated NATs allocate from 1024 to 65535:

# %%
from punchlab.exercises import PORT_SPACE

PORT_SPACE

# %% [markdown]
# Write `probes_needed(open_ports, chance, ports)`: the fewest probes that
# hit at least one open port with probability at least `chance`. (Work out
# the chance that every probe misses: the first misses with probability
# `(ports - open_ports) / ports`, and each miss leaves one port fewer to
# choose from.) The check accepts an answer within 1% of the exact one, so
# the "with replacement" shortcut `(1 - open_ports / ports) ** n` passes too.
# Tailscale's figures above (256 ports open: 174 probes for about 50%, 1,024
# for about 98%) are a good first test.


# %% tags=["exercise-stub", "exercise:05-port-prediction"]
def probes_needed(open_ports, chance, ports):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:05-port-prediction"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["05-port-prediction"]()
exercise.check()

# %% [markdown]
# ## Exercise: classify a mystery NAT
#
# RFC 5780 tells how a host finds out what kind of NAT it is behind: send
# from one port to a server at two addresses and two ports, and compare the
# public ports the server reports (the mapping); then ask the server to
# answer from its other port and its other address, and see which answers
# get in (the filtering). `observe(mapping, filtering)` runs those tests on a
# simulated NAT and returns what they saw:

# %%
from punchlab.exercises import observe

observe("endpoint-independent", "address-dependent")

# %% [markdown]
# Write `classify(observation)`: from such a dict alone, return the pair
# `(mapping, filtering)`, each one of `"endpoint-independent"`,
# `"address-dependent"`, `"address-and-port-dependent"`. The check hands it
# the observations of every combination the simulator can build and compares
# your pair with the NAT's configuration.


# %% tags=["exercise-stub", "exercise:05-classify-nat"]
def classify(observation):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:05-classify-nat"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["05-classify-nat"]()
exercise.check()

# %% [markdown]
# ## Summary
#
# * Three mappings and three filterings make nine NATs; four have classic
#   names, and the names hide which of the two behaviours matters.
# * Of the 81 pairs, the original algorithm connects only those where both
#   NATs map endpoint-independently; punchlab connects many more (the counts
#   above come from the run).
# * punchlab's rescue is to answer the port a valid `HELLO` came from (a
#   peer-reflexive address); it needs a filter that lets that new port in,
#   and the same public IP for every mapping (REQ-2's paired pooling).
# * Where the punch fails, port prediction (RFC 5128 §3.5), birthday probing
#   and a relay (TURN, RFC 8656) remain, and with them every pair connects;
#   the birthday odds you computed say how many probes it costs (notebook 10
#   climbs the whole ladder).
# * RFC 5780's tests tell the mapping and the filtering apart from outside,
#   which is how a program finds out which row of the matrix it is in.
#
# ## What comes next
#
# The matrix was all simulation. In [6. Chatting](06-chat.ipynb) you drive
# two peers yourself, with panels, first on the simulator and then on real
# UDP sockets on this machine, and you track down the bug in a broken peer
# from its sequence diagram.
