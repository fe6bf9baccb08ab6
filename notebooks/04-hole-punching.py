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
# packets from anyone its inside host has not talked to. The trick: **both send
# at once.** Alice's `HELLO` to Bob goes out through her NAT, which now expects
# answers from Bob; Bob's `HELLO` to Alice does the same on his side. The first
# `HELLO`s may be dropped by the other NAT (it was not open yet), but as soon as
# both NATs have seen an outgoing packet, `HELLO`s get through. A peer answers a
# `HELLO` with `SUCCESS`; a peer that receives `SUCCESS` is connected.

# %%
from punchlab.sim import punch

result = punch("port-restricted-cone", "port-restricted-cone", seed=0)
print(result.summary())

# %%
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(result.trace, types=["HELLO", "SUCCESS", "TEXT"], collapse=True)

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

# %%
import matplotlib.pyplot as plt

fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 6), layout="constrained")
_ = sequence_diagram(original.trace, left, types=["HELLO", "SUCCESS"], title="original: 3 s ticker")
_ = sequence_diagram(result.trace, right, types=["HELLO", "SUCCESS"], title="punchlab")

# %% [markdown]
# ## The peer's state machine
#
# Everything a peer does follows one table of transitions (the code, the tests
# and this picture all read the same table):

# %%
from punchlab.diagram import state_diagram

_ = state_diagram(highlight=result.state_a)

# %% [markdown]
# Next: [5. Chatting](05-chat.ipynb).
