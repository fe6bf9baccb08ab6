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
# RFC 4787 describes a NAT by three choices:
#
# * **mapping**: does it reuse the same public port for every destination
#   (*endpoint-independent*), or open a new one per destination address, or per
#   address and port (*address-and-port-dependent*: the "symmetric" NAT)?
# * **filtering**: who may send in through a mapping: anyone, only addresses
#   the inside host has sent to, or only exact address:port pairs?
# * **port allocation**: keep the inside port if free, count up, or pick at random.
#
# The classic names are presets of the first two:

# %%
from punchlab.sim import PRESETS

for name, config in PRESETS.items():
    print(f"{name:21} mapping {config.mapping.value:27} filtering {config.filtering.value}")

# %% [markdown]
# Every pair, both ways round, with punchlab's algorithm and with the
# original one:

# %%
from punchlab.sim import success_matrix

ours = success_matrix()
original = success_matrix(seed_compatible=True)
print(ours.text())

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
# A port-restricted cone NAT facing a symmetric one still fails: the new port
# is not one the port-restricted side ever sent to, so its filter drops it.
# That needs port prediction or a relay (TURN), which is beyond hole punching.
# Next: [7. Classroom mode](07-classroom.ipynb).
