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
# By the end of this notebook you will be able to:
#
# * read a NAT's mapping table;
# * find, in a trace, the row where the NAT rewrote a datagram;
# * tell mapping from filtering, in RFC 4787's words;
# * say whether a NAT lets a packet in, from its filtering behaviour.
#
# ## Private and public addresses
#
# Your laptop has a *private* address, like `10.0.1.2`, from one of the
# blocks RFC 1918 §3 sets aside: `10.0.0.0/8`, `172.16.0.0/12` and
# `192.168.0.0/16`. Anyone may use them, so thousands of other laptops have
# the same address, and the internet cannot route to it. They exist because
# IPv4 has too few addresses for every device (RFC 1918 §2 names the worry
# that they would run out).
#
# Your router does **Network Address Translation**: when a packet goes out,
# it rewrites the private source `10.0.1.2:5000` into its own *public*
# address, say `198.51.100.1:5000` (a documentation address, RFC 5737 §3),
# and records this in a **mapping table**. When an answer comes back, the
# table says where inside to send it.
#
# A datagram's *5-tuple* is its source address and port, destination
# address and port, and protocol. The NAT rewrites the source going out and
# the destination coming in. A table row, a **mapping**, pairs one inside
# address:port with one public address:port (RFC 4787 §4.1).
#
# ## Two questions: mapping and filtering
#
# RFC 4787 (the IETF's requirements for NATs that carry UDP) describes this
# behaviour with two separate questions, and this course uses its words:
#
# * **mapping** (RFC 4787 §4.1): when Alice sends from one inside
#   address:port to different destinations, does the NAT reuse one public
#   port (*endpoint-independent*), or open one per destination address
#   (*address-dependent*) or per address and port
#   (*address-and-port-dependent*)?
# * **filtering** (RFC 4787 §5): who may send *in*: anyone
#   (*endpoint-independent*), addresses Alice has sent to
#   (*address-dependent*), or only the exact address:port pairs
#   (*address-and-port-dependent*)?
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
# The old names lump mapping and filtering together, and many real NATs fit
# none of the four (RFC 4787 §3; RFC 5389 §2 calls the classification
# "faulty"). A NAT with address-dependent mapping has no classic name.
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
# The cell above printed NAT A's two sides: Alice's private
# `('10.0.1.2', 5000)` and the public `198.51.100.1`. Its mapping table,
# below, says `no mappings`: nobody inside has sent anything yet.

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
# Now there is a row: `inside` `10.0.1.2:5000` is `outside`
# `198.51.100.1:5000` (the simulator's cone presets keep the inside port when
# it is free). `remotes` lists *who* Alice has sent to, here the server
# `203.0.113.1:8089`; the filter checks this list.
#
# `expires in s` reads `119.001`. A UDP header (RFC 768) has no field that
# says "this conversation is over", so a NAT forgets a mapping that stays
# silent. RFC 4787 §4.3 REQ-5 says the timer must not expire in less than
# two minutes (except for some well-known ports) and recommends five minutes
# or more; REQ-6 says outbound packets must refresh it. punchlab's NATs use
# 120 s, refreshed by outbound packets only: the mapping was made at 1 ms
# and printed at 1 s, hence 119.001.
#
# In the trace below, Alice `sent` the datagram at 0.0 ms; at 1.0 ms NAT A
# `translated` it (see `detail`); at 21.0 ms the server's `from` column shows
# the public address. The answer is rewritten back at 41.0 ms.

# %%
print(net.trace.table())

# %% [markdown]
# ## Mapping, worked through
#
# With one destination, every mapping behaviour gives the same row. Suppose
# Alice next sends from `10.0.1.2:5000` to `198.51.100.2:5000` (a new
# address) or to `203.0.113.1:9999` (the server's address, another port):
#
# * *endpoint-independent* mapping reuses `198.51.100.1:5000` for both;
# * *address-dependent* mapping reuses it for `203.0.113.1:9999` (same
#   address as the server) but opens a new public port for
#   `198.51.100.2:5000`;
# * *address-and-port-dependent* mapping opens a new public port for each.
#
# RFC 4787 REQ-1 requires endpoint-independent mapping. With it, the port
# the server saw is the port everyone else will see too.
#
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
# Look at the middle rows: Mallory, at `198.51.100.2:5000`, `sent` a `HELLO`
# at 999.0 ms, and NAT A `dropped` it at 1019.0 ms, `filtered by NAT`. The
# last row is a `HEART-BEAT` Alice sent to the server (notebook 2 explains
# these); going out, it restarts the mapping's timer.
#
# NAT A filters *address-and-port-dependently* ("port-restricted cone"): it
# lets in only packets from an address *and port* Alice has sent to. Nobody
# outside can reach Alice first.
#
# ## Filtering, worked through
#
# Alice has sent to `203.0.113.1:8089` only. Three senders try
# `198.51.100.1:5000`:
#
# | sender | endpoint-independent | address-dependent | address-and-port-dependent |
# | --- | --- | --- | --- |
# | server, `203.0.113.1:8089` | in | in | in |
# | `203.0.113.1:9999` | in | in | dropped |
# | Mallory, `198.51.100.2:5000` | in | dropped | dropped |
#
# Now put Bob behind a NAT like NAT A. To Bob's NAT, Alice's first packet is
# just like Mallory's, so it is dropped; so is Bob's first packet to Alice.
# Neither can go first. Hole punching ([notebook 4](04-hole-punching.ipynb))
# has *both* send: each outgoing packet adds the other side to its own NAT's
# list, so the other side's next packet gets in.
#
# The same story as a picture: one lifeline per host, time running down, an
# arrow per datagram.

# %%
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(net.trace, addresses=True)

# %% [markdown]
# In the figure, the `REGISTRATION` arrows bend at NAT A, labelled with each
# rewrite. Mallory's `HELLO` ends at NAT A in a red cross, `filtered by NAT`.
# Grey bands mark idle time left out (958 ms and 22 ms).
#
# ## Filtering is a firewall's job
#
# Filtering is what any *stateful firewall* does: it lets in only answers to
# traffic that went out. A NAT needs the same state, so it filters too.
# That is why punching does not go away with IPv6: a home router following RFC 6092's
# recommended default drops unsolicited inbound UDP; two IPv6 hosts behind
# such routers still have to punch through.

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
# Until you replace the stub, the check says `not attempted yet`; then it
# counts the right cases and shows the first failing one with a hint.
#
# ## Summary
#
# * Alice's `10.0.1.2:5000` left NAT A as `198.51.100.1:5000`.
# * NAT A's table gained one row: the server as its only remote, 120 s timer.
# * The trace showed the rewrite both ways.
# * Mallory's `HELLO` was dropped: NAT A filters
#   address-and-port-dependently.
# * Mapping (which public port) and filtering (who may send in) are separate
#   behaviours (RFC 4787 §4.1, §5).
#
# **Try it:** set `NAT_KIND` to `"full-cone"` in the second cell and run
# the notebook again. Endpoint-independent filtering lets *anyone* in once a
# mapping exists: Mallory's packet reaches Alice. Try `"symmetric"` too.
#
# ## What comes next
#
# Alice cannot see her own public address; the server can. In
# [2. Registration](02-registration.ipynb) you see how the server learns
# `198.51.100.1:5000`, and why Alice keeps sending heart-beats.
