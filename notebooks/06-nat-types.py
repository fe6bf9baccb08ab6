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
# # 6. NAT types, and which pairs can talk
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
# The classic names are presets of mapping and filtering:
# %%
from punchlab.sim import PRESETS

for name, config in PRESETS.items():
    print(f"{name:21} mapping {config.mapping.value:27} filtering {config.filtering.value}")

# %% [markdown]
# Every pair, both ways round, with punchlab's algorithm and with the
# original one. **Predict first**, before you run the matrix: how many of the
# 25 cells connect with punchlab's algorithm? And will a port-restricted cone
# NAT facing a symmetric one connect?

# %%
from punchlab.exercises import connect_question, matrix_question

matrix_question()

# %%
connect_question(
    lambda: "port-restricted-cone",
    lambda: "symmetric",
    "Alice behind a port-restricted cone NAT, Bob behind a symmetric one: will they connect?",
)

# %%
from punchlab.sim import success_matrix

ours = success_matrix()
original = success_matrix(seed_compatible=True)
print(ours.text())
print(sum(row.count(True) for row in ours.as_table()), "of 25 connect")

# %%
import matplotlib.pyplot as plt

from punchlab.diagram import matrix_diagram

fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.6), layout="constrained")
for ax, matrix, title in ((axes[0], original, "original algorithm"), (axes[1], ours, "punchlab")):
    _ = matrix_diagram(matrix, ax, title=title, rows="Alice's NAT", columns="Bob's NAT")

# %% [markdown]
# ## Why the original fails against a symmetric NAT
#
# A symmetric NAT opens a **new public port for every destination**. The port
# the server saw was opened for the server only. The original client keeps
# sending to that port, so its `HELLO`s are dropped. punchlab answers the port a
# valid `HELLO` *actually came from* (a "peer-reflexive" address, in ICE's
# words), which rescues every pair where the other side's filter lets that new
# port in: look at the restricted-cone row.
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

failing = original.cells[("restricted-cone", "symmetric")]
rescued = ours.cells[("restricted-cone", "symmetric")]
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
# A port-restricted cone NAT facing a symmetric one still fails in punchlab:
# the new port is not one the port-restricted side ever sent to, so its
# filter drops it. punchlab does not (yet) try the next step, but hole
# punching has one:
#
# * **Port prediction** is itself a punching technique (RFC 5128 §3): guess
#   which public port the symmetric NAT will pick and send there. Sequential
#   allocation makes the guess easy. Against random allocation, the "birthday"
#   method has the symmetric side open 256 ports at once while the other side
#   probes random ones: Tailscale's "How NAT traversal works" (2020) computes
#   about a 50% chance of a hit after 174 probes and 98% after 1,024.
# * Only when **both** sides are symmetric does the guessing become hopeless,
#   and the peers need a **relay**: TURN (RFC 8656), a server that forwards
#   every datagram.
# * A host can also ask its own router for a mapping, with the Port Control
#   Protocol (PCP, RFC 6887) or the older NAT-PMP (RFC 6886), where the
#   router supports them.

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


# %% tags=["exercise-stub", "exercise:06-classify-nat"]
def classify(observation):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:06-classify-nat"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["06-classify-nat"]()
exercise.check()

# %% [markdown]
# Next: [7. Classroom mode](07-classroom.ipynb).
