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
# # 2. Registration: how the server learns your public address
#
# Alice cannot know her public address: only her NAT knows it. So she sends a
# `REGISTRATION` datagram to a server on the public internet. The server sees
# where the datagram *came from*, which is the NAT's public address and port,
# stores it, and answers with an identifier that others can use to find her.
#
# Each datagram is one small JSON object, the same as in the original Go
# implementation:

# %%
from punchlab.messages import Message, MessageType, encode

encode(Message(MessageType.REGISTRATION, ""))

# %%
from punchlab.sim import Network

net = Network(seed=0)
server = net.add_server()
alice = net.add_peer("Alice", behind=net.add_nat("NAT A", "port-restricted-cone"))
bob = net.add_peer("Bob", behind=net.add_nat("NAT B", "symmetric"))
alice.register()
bob.register()
net.run_for(1.0)
print("Alice's ID:", alice.id)
print("Bob's ID:  ", bob.id)

# %% [markdown]
# The server's table holds what it saw: not `10.0.1.2`, but the NATs' public
# addresses. That is the address it will give to anyone who wants to talk to
# Alice.

# %%
for registration in server.registrations:
    print(registration.peer_id, "->", registration.address)

# %%
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(net.trace, types=["REGISTRATION"], addresses=True)

# %% [markdown]
# ## UDP loses packets
#
# UDP promises nothing: a datagram can be lost. punchlab's peer sends
# `REGISTRATION` again after 0.2 s, 0.4 s, 0.8 s… until the server answers (the
# server gives the same identifier to a repeated request from the same address).
# On a link that loses half of all datagrams:

# %%
from punchlab.sim import LinkConfig

lossy = Network(seed=3, internet=LinkConfig(latency=0.02, loss=0.5))
lossy.add_server()
carol = lossy.add_peer("Carol", behind=lossy.add_nat("NAT C", "full-cone"))
carol.register()
lossy.run_until(lambda: carol.id is not None, 10.0)
print(lossy.trace.filter(actors=["Carol", "internet"], types=["REGISTRATION"]).table())

# %% [markdown]
# The peer also sends a `HEART-BEAT` to the server every 3 seconds. It keeps
# the NAT's mapping alive (NATs forget silent mappings after a while) and tells
# the server Alice is still there; a registration expires after 30 s of silence.
#
# Next: [3. The rendezvous](03-rendezvous.ipynb).
