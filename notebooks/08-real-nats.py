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
# By the end of this notebook you will be able to:
#
# - say what a network namespace and a veth pair are;
# - name the RFC 4787 behaviour of an nftables `masquerade` rule;
# - predict from which address the server sees a peer behind a real NAT;
# - explain why port-restricted cone against symmetric fails on the kernel's
#   NAT, as the simulator said.
#
# Everything so far ran on the simulator. Is it right? This notebook builds a
# small real network inside this machine with Linux *network namespaces*: a
# box for the server, one for each NAT (the kernel's connection-tracking NAT,
# configured with nftables), one for each peer, joined by virtual Ethernet
# cables. The real server and peers run in them as separate processes.
#
# A network namespace is a separate copy of the kernel's network stack, with
# its own devices, routing table, firewall rules and port numbers
# (network_namespaces(7)). A *veth pair* is the cable: two virtual Ethernet
# devices, where a packet sent on one is received at once on the other
# (veth(4)). The lab's plan (`punchlab/netlab/lab.py`):
#
# ```
# peer-a 10.0.1.2 -- nat-a 10.0.1.1 | 203.0.113.11 --+
#                                                    +-- bridge -- server 203.0.113.1
# peer-b 10.0.2.2 -- nat-b 10.0.2.1 | 203.0.113.12 --+
# ```
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
# Each NAT's rule set (`punchlab/netlab/nat_rules.py`) rests on one rule,
# `oifname "out0" masquerade`: rewrite the source to the outgoing interface's
# address (nft(8)). The kernel's connection tracking (*conntrack*) records
# the flow and its port, and translates every later packet of it, both ways.
# That record is the mapping. A packet from outside gets in only if it is a
# reply to a recorded flow, from the exact address and port the inside host
# sent to; the `input` chain drops other new UDP from outside. So plain masquerade
# gives endpoint-independent mapping and address-and-port-dependent
# filtering (RFC 4787, sections 4.1 and 5). The symmetric
# preset writes `masquerade random`; since kernel 5.0 `random` means
# `fully-random`, a pseudo-random port for each new flow (nft(8)). Each new
# destination gets a new port: address-and-port-dependent mapping.
#
# Conntrack forgets an idle UDP flow after 30 s if it has had no reply
# (`nf_conntrack_udp_timeout`), or after 120 s if it has had one and lasted
# over 2 s (`nf_conntrack_udp_timeout_stream`; kernel commit 294304e4c522).
# The 30 s is below RFC 4787's two minutes (REQ-5, section 4.3). The
# peers' 3 s heart-beats stay well inside both.
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

# %% [markdown]
# The next cell builds a fresh lab for each pair: both register, A asks for
# an introduction, both punch. Only punch: `ladder=False` keeps the peers
# from climbing the traversal ladder (port prediction, birthday probing, the
# relay) that notebook 10 adds when the punch fails.

# %%
# NBVAL_IGNORE_OUTPUT
pairs = [("port-restricted-cone", "port-restricted-cone"), ("port-restricted-cone", "symmetric")]
results = {}
if netlab.available():
    for pair in pairs:
        with netlab.Lab(*pair) as lab:
            results[pair] = await lab.apunch(
                punch_timeout=3.0, capture="lab-captures", ladder=False
            )
        print(results[pair].summary())

# %% [markdown]
# Where the lab ran, it printed one line per pair. The first pair connected
# within milliseconds (the links have no delay unless you ask, `--delay`).
# The second did not, as the simulator said.
#
# Why? B's symmetric NAT gave its flow to the server a random port, which
# the server hands to A. A's `HELLO` to that port matches no flow at B's NAT
# and is dropped. B's `HELLO` leaves from yet another port, one A never sent to,
# so A's NAT drops it too.
#
# The kernel's NATs write no trace, and the processes cannot see them. The
# lab can: it listens on both sides of each NAT while the peers run (the
# next section shows the packets), and rebuilds the run from those captures
# with each NAT as a lifeline, like the simulator's diagrams. The next cell
# prints, for each pair, the registrations as the server's own process
# received them, then draws the captured run. Alice's registration came from
# `203.0.113.11` (NAT A's public address), never from `10.0.1.2` (Alice's
# own).
#
# In the `from` column, A keeps port 5000 both times; B has 5000 in the
# first table and a random port in the second. In the first diagram, follow
# `HELLO`, `SUCCESS` and `TEXT` between A and B: each arrow bends at the
# NATs it crossed, and a `HELLO` that reached the other NAT before that
# side's own `HELLO` had opened it ends in a cross there ("entered the NAT,
# never left it"). In the second, every `HELLO` ends in a cross at the other
# side's NAT.

# %%
# NBVAL_IGNORE_OUTPUT
from punchlab.diagram import sequence_diagram

for result in results.values():
    drawn = result.capture_trace or result.trace  # the processes' own, without captures
    _ = sequence_diagram(drawn, collapse=True, title=result.summary())
    seen = result.trace.filter(actors=["server"], types=["REGISTRATION"], kinds=["delivered"])
    print(seen.table())

# %% [markdown]
# ## What the kernel did, packet by packet
#
# The diagrams above come from packet captures: while the peers ran,
# `tcpdump` listened on both sides
# of each NAT (its LAN and its outside link) and on the server's link, and
# after the run the lab asked each NAT's kernel for its connection-tracking
# table (`conntrack -L`), which is the real NAT's mapping table. The next
# cell prints, for the second pair, the capture's first `HELLO` packets, one
# row per datagram per link (times from the first of them), and NAT B's
# table. Look for a `HELLO` from `10.0.1.2` on `NAT A LAN` that appears again
# on `NAT A outside` from
# `203.0.113.11` (the rewrite) and on `NAT B outside`, but never on
# `NAT B LAN`: that is where the kernel dropped it. In the conntrack lines,
# the first `src=... dst=...` is the flow as the inside host sent it and the
# second is what the NAT expects back; `[UNREPLIED]` marks a flow that never
# got an answer. Below it, the simulator's NAT B after the same pair: the
# same two mappings (one to the server, one to Alice's public address, each
# with its own public port), in the simulator's words. Each capture is also
# a pcapng file in `lab-captures/`, with
# an interface per link: open it in Wireshark, or read it with
# `tshark -r FILE -d udp.port==5000,json -d udp.port==8089,json`.

# %%
# NBVAL_IGNORE_OUTPUT
from punchlab.pcap import capture_table
from punchlab.peer import PeerConfig
from punchlab.sim import punch

if results:
    failed = results[pairs[1]]
    print(f"capture file: {failed.capture}")
    hellos = [p for p in failed.packets if p.data.startswith(b'{"type":"HELLO"')]
    print(capture_table(hellos, limit=10))
    print()
    print("conntrack -L in NAT B:")
    print(failed.conntrack.get("b", ""))
    print()
    simulated = punch(*pairs[1], seed=0, timeout=3.0, config=PeerConfig(ladder=False))
    print("the simulator's NAT B for the same pair:")
    print(simulated.network.nat("NAT B").show(simulated.network.now))

# %% [markdown]
# From a terminal, as root: `punchlab netlab punch --nat-a full-cone --nat-b
# symmetric` and `punchlab netlab matrix`, which runs every pair on the real
# NATs and compares each with the simulator's prediction. (Conntrack alone
# admits only replies, so full and restricted cone add a DNAT rule fed by a
# set that the inside host's own packets fill.) The README records a run
# where all 25 pairs agreed.

# %% [markdown]
# ## Summary
#
# - Namespaces joined by veth pairs held a server, two nftables
#   `masquerade` NATs and two peers, all real processes.
# - The server saw Alice's `REGISTRATION` from `203.0.113.11`, never from
#   `10.0.1.2`; masquerade kept her port 5000.
# - Two port-restricted cone NATs (endpoint-independent mapping,
#   address-and-port-dependent filtering) connected and sent `TEXT` both ways.
# - Against a symmetric NAT (`masquerade random`), which gave B a random
#   port, no `HELLO` got through and neither side connected.
# - Both results match the simulator.

# %% [markdown]
# ## What comes next
#
# Run `punchlab netlab matrix` as root to check, on real NATs, every pair
# of the four classic kinds and no NAT (25 pairs); the other behaviours of
# the [success matrix](05-nat-types.ipynb) exist only in the simulator. For
# NATs you do not control, use [classroom mode](07-classroom.ipynb) with
# real laptops. And to find out which kind of NAT a machine is behind, real
# or simulated, go on to [9. What kind of NAT am I behind?](09-what-nat-am-i-behind.ipynb).
