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
# Alice's laptop does not know her public address: only the NAT that rewrote
# her packets does. Her home router could tell her (PCP, RFC 6887, and its
# predecessor NAT-PMP, RFC 6886, let a host ask it), but behind a
# carrier-grade NAT, where the ISP translates a second time, her router does
# not know the public address either: its own "outside" address is another
# private one. What always works is to ask someone outside. So she sends a
# `REGISTRATION` datagram to a server on the public internet. The server sees
# where the datagram *came from*, which is the NAT's public address and port,
# stores it, and answers with an identifier that others can use to find her.
#
# That is STUN in all but name. A STUN Binding request (RFC 8489 §3) asks a
# server "which address did this come from?", and the server answers with it
# (XOR-MAPPED-ADDRESS); ICE calls that address Alice's *server-reflexive*
# address (RFC 8445 §5.1.1.2). punchlab's server learns exactly the same
# address the same way; it just keeps it and hands it to whoever asks to talk
# to Alice, instead of telling Alice.
#
# Each datagram is one small JSON object, the same as in the original Go
# implementation:

# %%
from punchlab.messages import Message, MessageType, encode

encode(Message(MessageType.REGISTRATION, ""))

# %% [markdown]
# Alice sits behind a port-restricted cone NAT, Bob behind a symmetric one.
# Change the kinds in the next cell if you like; the questions follow them.

# %%
NAT_A_KIND = "port-restricted-cone"
NAT_B_KIND = "symmetric"

# %% [markdown]
# **Predict first**, before you run the cell after it: when Alice's
# `REGISTRATION` arrives, which address will the server see it come from?

# %%
from punchlab.exercises import server_sees_question

server_sees_question(lambda: NAT_A_KIND, lambda: NAT_B_KIND)

# %%
from punchlab.scenes import registered

# A server, Alice behind NAT A and Bob behind NAT B; both register, and the
# network runs for one virtual second.
scene = registered(NAT_A_KIND, NAT_B_KIND)
net, server, alice, bob = scene.net, scene.server, scene.alice, scene.bob
print("Alice's own address:", alice.address)
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
# On a link that loses half of all datagrams.
#
# **Predict first**: how many `REGISTRATION` datagrams will Carol send before
# her identifier comes back? (The simulation is seeded, so the losses are the
# same every run; change `SEED` or `LOSS` and check again.)

# %%
from punchlab.exercises import registration_attempts_question

SEED, LOSS = 3, 0.5
registration_attempts_question(lambda: SEED, lambda: LOSS)

# %%
from punchlab.scenes import lossy_registration

# Carol behind a full cone NAT registers across an internet that loses LOSS
# of all datagrams (20 ms each way); the network runs until her ID comes back.
lossy, carol = lossy_registration(SEED, LOSS)
print(lossy.trace.filter(actors=["Carol", "internet"], types=["REGISTRATION"]).table())

# %% [markdown]
# ## Heart-beats: NATs forget
#
# After registering, the peer sends the server a `HEART-BEAT` every second
# while it waits to be introduced (the server resends a lost `INITIATE_CHAT`
# only to a peer it keeps hearing from), and every 3 s otherwise, as the
# original Go client does; once connected it beats its partner every 3 s.
# Beats tell the server Alice is still there (a registration expires after
# 30 s of silence), and they keep the NAT's mapping alive, because a NAT
# forgets a mapping that stays silent:
#
# * RFC 4787 REQ-5 says a UDP mapping must not expire in less than 2 minutes
#   of silence and recommends 5 minutes or more; REQ-6 says outbound packets
#   must refresh it (inbound ones may). punchlab's simulated NATs forget after
#   120 s, refreshed by outbound traffic only.
# * Real NATs are often shorter. Linux conntrack, behind most home routers,
#   keeps a UDP flow that has seen no reply for 30 s
#   (`nf_conntrack_udp_timeout`), and one with traffic both ways for 120 s
#   (`nf_conntrack_udp_timeout_stream`).
# * ICE, which WebRTC uses, sends a keepalive when a path has been quiet for
#   15 s (RFC 8445 §11).
#
# A beat every few seconds is well inside all of these.
#
# Next: [3. The rendezvous](03-rendezvous.ipynb).
