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
# # 8. Real NATs: the Linux kernel's own
#
# Everything so far ran on the simulator. Is it right? This notebook builds a
# small real network inside this machine with Linux *network namespaces*: a
# box for the server, one for each NAT (the kernel's connection-tracking NAT,
# configured with nftables), one for each peer, joined by virtual Ethernet
# cables. The real server and peers run in them as separate processes.
#
# **It needs Linux and root** (and the `ip` and `nft` commands): a Linux
# machine you control, not Windows or macOS, not Binder. Where it cannot run,
# the cells say why and do nothing. Its numbers change from run to run (real time, real ports),
# so the automatic notebook check runs these cells but does not compare them.

# %%
# NBVAL_IGNORE_OUTPUT
from punchlab import netlab

print("the lab can run here" if netlab.available() else "; ".join(netlab.lab_problems()))

# %% [markdown]
# Two peers behind port-restricted cone NATs (plain Linux masquerading), then a
# port-restricted cone against a symmetric NAT (masquerading with random ports).
# Plain `masquerade` keeps the inside source port only when that port is still
# free on the NAT's public address; when another flow already holds it, Linux
# picks a different port. With one host per NAT, as here, the port is always
# free, so the mapping is endpoint-independent; a busy real router can behave
# differently.
#
# **Predict first**, before the lab runs: in the lab, Alice lives at
# `10.0.1.2` behind NAT A. From which IP address will the server see her
# `REGISTRATION`? And will the second pair, port-restricted cone against
# symmetric, connect on real Linux NATs? The simulator answers the second
# question; the lab then checks the simulator.

# %%
from punchlab.exercises import connect_question, lab_registration_question

lab_registration_question(lambda: "port-restricted-cone")

# %%
connect_question(
    lambda: "port-restricted-cone",
    lambda: "symmetric",
    "Port-restricted cone against symmetric, on real Linux NATs: will they connect?",
)

# %%
# NBVAL_IGNORE_OUTPUT
pairs = [("port-restricted-cone", "port-restricted-cone"), ("port-restricted-cone", "symmetric")]
results = {}
if netlab.available():
    for pair in pairs:
        with netlab.Lab(*pair) as lab:
            results[pair] = await lab.apunch(punch_timeout=3.0)
        print(results[pair].summary())

# %% [markdown]
# The merged trace of the server's and both peers' processes, drawn like the
# simulator's. The kernel NATs do not write traces, so there is no NAT
# lifeline and the diagram does not show the rewriting. The addresses in the
# trace do: the table under each diagram lists the registrations as the server
# received them, from `203.0.113.11` (NAT A's public address), never from
# `10.0.1.2` (Alice's own).

# %%
# NBVAL_IGNORE_OUTPUT
from punchlab.diagram import sequence_diagram

for result in results.values():
    _ = sequence_diagram(result.trace, collapse=True, title=result.summary())
    seen = result.trace.filter(actors=["server"], types=["REGISTRATION"], kinds=["delivered"])
    print(seen.table())

# %% [markdown]
# From a terminal, as root: `punchlab netlab punch --nat-a full-cone --nat-b
# symmetric` and `punchlab netlab matrix`, which runs every pair on the real
# NATs and compares each with the simulator's prediction.
