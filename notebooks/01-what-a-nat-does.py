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
# # 1. What a NAT does to a packet
#
# Your laptop has a *private* address, like `10.0.1.2`. Thousands of other
# laptops have the same one, so the internet cannot route to it. The router
# between your network and the internet does **Network Address Translation**:
# when a packet goes out, it rewrites the private source `10.0.1.2:5000` into
# its own *public* address, say `198.51.100.1:5000`, and remembers that it did,
# in a **mapping table**. When an answer comes back to `198.51.100.1:5000`, the
# table tells it where to send it inside.
#
# This notebook runs on punchlab's simulated internet: no real network needed,
# and every run is the same (the simulation is seeded).

# %%
from punchlab.sim import Network

net = Network(seed=0)
server = net.add_server()  # public: 203.0.113.1
nat = net.add_nat("NAT A", "port-restricted-cone")  # a typical home router
alice = net.add_peer("Alice", behind=nat)  # private: 10.0.1.2:5000
print("Alice's own address:", alice.address)
print("her NAT's public address:", nat.outside_ip)

# %% [markdown]
# The mapping table starts empty: nobody inside has sent anything yet.

# %%
print(nat.show(net.now))

# %% [markdown]
# Alice registers with the rendezvous server (the next notebook explains why).
# That sends one UDP datagram out through her NAT.

# %%
alice.register()
net.run_for(1.0)
print(nat.show(net.now))

# %% [markdown]
# Now there is a row: inside `10.0.1.2:5000` is outside `198.51.100.1:5000`, and the
# NAT remembers *who* Alice talked to (the server). The trace shows the
# rewrite: Alice sent from her private address, the NAT `translated` it, and
# the server saw the packet coming from the public one.

# %%
print(net.trace.table())

# %% [markdown]
# ## Unsolicited packets are dropped
#
# A stranger on the internet, Mallory, now sends a datagram to that public
# port. A **port-restricted cone** NAT only lets in packets from an address
# *and port* that Alice has sent to herself, so Mallory's packet is dropped.
# This is what makes peer-to-peer hard: nobody outside can reach Alice first.

# %%
from punchlab.messages import Message, MessageType, encode

mallory = net.add_peer("Mallory")  # a public address, no NAT
net.send("Mallory", mallory.address, (nat.outside_ip, 5000), encode(Message(MessageType.HELLO)))
net.run_for(1.0)
print(net.trace.filter(actors=["Mallory", "NAT A"]).table(limit=6))

# %% [markdown]
# The same story as a picture: one lifeline per host, time running down, an
# arrow per datagram from when it left to when it arrived. It bends where the
# NAT rewrote it, and ends in a red cross where it was dropped.

# %%
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(net.trace, addresses=True)

# %% [markdown]
# **Try it:** change `"port-restricted-cone"` to `"full-cone"` in the second cell
# and run the notebook again. A full cone NAT lets *anyone* in once a mapping
# exists: Mallory's packet reaches Alice. Next: [2. Registration](02-registration.ipynb).
