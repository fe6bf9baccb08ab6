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
# RFC 4787 (the IETF's requirements for NATs that carry UDP) describes this
# behaviour with two separate questions, and this course uses its words:
#
# * **mapping** (RFC 4787 §4.1): when Alice sends from one inside address and
#   port to different destinations, does the NAT reuse one public port for all
#   of them (*endpoint-independent*), or open a new one per destination address
#   (*address-dependent*), or per destination address and port
#   (*address-and-port-dependent*)?
# * **filtering** (RFC 4787 §5): who may send *in* through a public port:
#   anyone (*endpoint-independent*), only addresses Alice has sent to
#   (*address-dependent*), or only the exact address:port pairs she has sent
#   to (*address-and-port-dependent*)?
#
# You will also meet the older names from classic STUN (RFC 3489). punchlab
# keeps them only as shorthands for four combinations:
#
# | classic name | mapping | filtering |
# | --- | --- | --- |
# | full cone | endpoint-independent | endpoint-independent |
# | restricted cone | endpoint-independent | address-dependent |
# | port-restricted cone | endpoint-independent | address-and-port-dependent |
# | symmetric | address-and-port-dependent | address-and-port-dependent |
#
# The old names fell out of use because each one lumps mapping and filtering
# together, and many real NATs fit none of the four (RFC 4787 §3; RFC 5389 §1
# says classic STUN's classification "was found to be faulty, as many NATs did
# not fit cleanly into the types defined there"). A NAT with
# address-dependent mapping, for instance, has no classic name at all.
#
# This notebook runs on punchlab's simulated internet: no real network needed,
# and every run is the same (the simulation is seeded).

# %%
from punchlab.sim import Network

NAT_KIND = "port-restricted-cone"  # a typical home router; try "full-cone" or "symmetric"

net = Network(seed=0)
server = net.add_server()  # public: 203.0.113.1
nat = net.add_nat("NAT A", NAT_KIND)
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
#
# **Predict first**, before you run the next cells: which public port will
# NAT A give Alice? Type your guess and press *Check*; the simulator answers,
# for whatever `NAT_KIND` is set to above.

# %%
from punchlab.exercises import port_question

port_question(lambda: NAT_KIND)

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
# port. **Predict first**: will Mallory's packet get through NAT A?

# %%
from punchlab.course import mallory_question

mallory_question(lambda: NAT_KIND)

# %% [markdown]
# Run it and see:

# %%
from punchlab.messages import Message, MessageType, encode

mallory = net.add_peer("Mallory")  # a public address, no NAT
net.send("Mallory", mallory.address, (nat.outside_ip, 5000), encode(Message(MessageType.HELLO)))
net.run_for(1.0)
print(net.trace.filter(actors=["Mallory", "NAT A"]).table(limit=6))

# %% [markdown]
# NAT A filters *address-and-port-dependently* (the classic
# "port-restricted cone"): it only lets in packets from an address *and port*
# that Alice has sent to herself, so Mallory's packet is dropped. This is what
# makes peer-to-peer hard: nobody outside can reach Alice first.
#
# The same story as a picture: one lifeline per host, time running down, an
# arrow per datagram from when it left to when it arrived. It bends where the
# NAT rewrote it, and ends in a red cross where it was dropped.

# %%
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(net.trace, addresses=True)

# %% [markdown]
# ## Filtering is a firewall's job
#
# Filtering is not part of translating addresses: it is what any *stateful
# firewall* does, letting in only answers to traffic that went out. A NAT
# happens to need the same state, so it filters too. That is why punching
# does not go away with IPv6. Every IPv6 host can have a public address and
# no NAT, but a home router following RFC 6092 (its recommended default) drops unsolicited
# inbound UDP by default, so two IPv6 hosts behind such routers still have to
# punch through each other's firewall exactly as in this course.

# %% [markdown]
# ## Exercise: the filtering decision
#
# Write the decision a NAT's filter makes, as RFC 4787 §5 describes it.
# `allows(filtering, contacted, source)` gets the filtering behaviour (one of
# `"endpoint-independent"`, `"address-dependent"`,
# `"address-and-port-dependent"`), the set of `(ip, port)` endpoints Alice has
# sent to, and the `(ip, port)` a packet comes from; it returns `True` if the
# packet gets in. Replace `raise NotImplementedError` with your code, run the
# cell, then run the check below it: it tries your function on every kind of
# filter and sender and compares it with the simulator's NAT.


# %% tags=["exercise-stub", "exercise:01-filtering"]
def allows(filtering, contacted, source):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:01-filtering"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["01-filtering"]()
exercise.check()

# %% [markdown]
# **Try it:** change `NAT_KIND` to `"full-cone"` in the second cell
# and run the notebook again. A full cone NAT (endpoint-independent
# filtering) lets *anyone* in once a mapping exists: Mallory's packet reaches
# Alice. Next: [2. Registration](02-registration.ipynb).
