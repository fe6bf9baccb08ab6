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
# By the end of this notebook you will be able to:
#
# 1. explain why a peer must ask a server outside for its public address;
# 2. predict the address a server records for a peer behind a given NAT;
# 3. find in a sequence diagram where each NAT rewrote a datagram;
# 4. explain how registration survives lost datagrams;
# 5. say why a registered peer keeps sending heart-beats.
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
# The peer registers from the UDP socket it will later punch from: the
# server must see the mapping the NAT made for *that* socket. Each datagram
# is one small JSON object, the same as in the original Go implementation:

# %%
from punchlab.messages import Message, MessageType, encode

encode(Message(MessageType.REGISTRATION, ""))

# %% [markdown]
# Those are the datagram's bytes. The payload is empty: the server needs only
# the source address, read from the IP and UDP headers.
#
# Alice sits behind a port-restricted cone NAT (endpoint-independent mapping,
# address-and-port-dependent filtering: RFC 4787 §4.1 and §5), Bob behind a
# symmetric one (address-and-port-dependent mapping and filtering).
# Change the kinds in the next cell if you like; the questions follow them.

# %%
NAT_A_KIND = "port-restricted-cone"
NAT_B_KIND = "symmetric"

# %% [markdown]
# **Predict first**, before you run the cell after it: when Alice's
# `REGISTRATION` arrives, which address will the server see it come from?
# Recall what a NAT does to an outgoing source (chapter 1).

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
# Alice's own address, `10.0.1.2`, is private (RFC 1918 §3). The IDs are
# random version-4 UUIDs (RFC 9562 §5.4), as in the Go server; seeded here,
# so every run prints the same ones.
#
# The server's table holds what it saw: not `10.0.1.2`, but the NATs' public
# addresses. That is the address it will give to anyone who wants to talk to
# Alice.

# %%
for registration in server.registrations:
    print(registration.peer_id, "->", registration.address)

# %% [markdown]
# Look at the ports. NAT A kept Alice's port 5000; the symmetric NAT B chose
# 50697 at random. NAT A's mapping is endpoint-independent (RFC 4787 §4.1,
# whose REQ-1 makes it a MUST): `198.51.100.1:5000` stands for Alice towards
# every destination, so it is worth handing to Bob. NAT B's is
# address-and-port-dependent: 50697 stands for Bob towards the server only.
# Chapter 5 shows what that costs.
#
# In the diagram below, time runs down in milliseconds, one arrow per
# datagram. Beside each NAT is its rewrite: the source going out
# (`10.0.1.2:5000 → 198.51.100.1:5000`), the destination coming back. Both
# answers arrive at 42 ms: 1 ms per home network and 20 ms across the
# internet, each way.

# %%
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(net.trace, types=["REGISTRATION"], addresses=True)

# %% [markdown]
# ## UDP loses packets
#
# UDP promises nothing: a datagram can be lost. punchlab's peer sends
# `REGISTRATION` again after 0.2 s, 0.4 s, 0.8 s… until the server answers (the
# server gives the same identifier to a repeated request from the same address).
# The wait stops doubling at 2 s; the peer gives up after 6 attempts. A STUN
# client backs off the same way: from 500 ms on fixed-line links, doubling,
# up to 7 requests (RFC 8489 §6.2.1). If only the *answer* was lost, the retry
# reaches a server that already answered, and its reply must leave the same
# state whichever answer arrives (RFC 8489 §6.3.1); punchlab's server resends
# the same bytes. Carol's link loses half of all datagrams.
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
# Read the table (for `SEED = 3`, `LOSS = 0.5`). Carol sent at 0 ms. The row
# at 31 ms is the server's answer, lost halfway along the link: the server
# had registered Carol, but she never heard. Her retry left at 200 ms; at
# 242 ms the answer brought the identifier made for her first request.
#
# ## Heart-beats: NATs forget
#
# After registering, the peer sends the server a `HEART-BEAT` every second
# while it waits to be introduced (the server resends a lost `INITIATE_CHAT`
# only to a peer it keeps hearing from), and every 3 s otherwise (the
# original Go client beats every 3 s throughout); once connected it beats its partner every 3 s.
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
# ## Summary
#
# * A `REGISTRATION` has an empty payload; the server uses its source address.
# * The server recorded Alice at `198.51.100.1:5000` and Bob at
#   `198.51.100.2:50697`, their server-reflexive addresses, not `10.0.x.2`;
#   NAT A kept Alice's port, symmetric NAT B chose a random one.
# * The diagram showed each NAT rewriting both ways; answers came at 42 ms.
# * Carol's first answer was lost; her retry got the same identifier.
# * Heart-beats (every 1 s while waiting, 3 s otherwise) keep the
#   registration and the NAT mapping alive.
#
# ## What comes next
#
# The server now knows each peer's public address. In
# [3. The rendezvous](03-rendezvous.ipynb) Alice asks it over HTTP to
# introduce her to Bob: it answers her with Bob's public address and sends
# Bob an `INITIATE_CHAT` datagram carrying hers.
