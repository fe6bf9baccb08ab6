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
# # 7. Classroom mode: real peers on a real network
#
# By the end of this notebook you will be able to:
#
# * start the rendezvous server for a class, and say which ports the
#   teacher's machine must accept;
# * connect to a classmate, from the panel below or with `punchlab chat`;
# * predict, for three ways of seating a class, whether students can punch
#   to each other, and say what breaks when they cannot;
# * find the `HELLO`s a NAT without hairpinning drops, in a trace table and
#   a sequence diagram.
#
# In class, the teacher runs the rendezvous server on a machine everyone can
# reach (HTTP port 8088 and UDP port 8089 open):
#
#     punchlab serve
#
# It prints the address students should use and logs every registration and
# introduction. Each student then either runs `punchlab chat --server
# http://TEACHER:8088` in a terminal, or uses the panel below.
#
# **For the lecturer.** Put the `students: punchlab chat --server ...`
# line that `punchlab serve` prints on the board. The teacher's machine
# must accept TCP 8088, where a peer asks `GET /get-udp-port` and later to
# be introduced, and UDP 8089, where it registers and sends heart-beats.
# If a firewall blocks 8088, every student fails before sending a datagram;
# if it blocks 8089, no `REGISTRATION` is answered. With `ufw`, that is
# `sudo ufw allow 8088/tcp` and `sudo ufw allow 8089/udp` (ufw(8), rule
# syntax `PORT[/protocol]`).
#
# Run on its own, this notebook needs no network: it starts its own server
# inside this kernel, on this machine's loopback address, and the panel talks
# to it. The next cell turns it into the real thing.

# %%
import os

# Students: the address the teacher's `punchlab serve` printed, e.g. "http://192.168.1.20:8088"
# (or set PUNCHLAB_SERVER before starting JupyterLab). Empty: this notebook's own server.
SERVER_URL = os.environ.get("PUNCHLAB_SERVER", "")
# Teacher: "0.0.0.0" opens this notebook's own server to the class on ports 8088 (HTTP)
# and 8089 (UDP); "127.0.0.1" keeps it on this machine, on ports the system picks.
CLASS_HOST = "127.0.0.1"

# %% [markdown]
# ## The teacher's view
#
# Unless `SERVER_URL` names another machine's server, the rendezvous server
# runs here, inside this kernel, and this panel shows every registration and
# introduction as it happens: it is what `punchlab serve` logs.
#
# With `CLASS_HOST = "0.0.0.0"` it takes ports 8088 and 8089, like
# `punchlab serve`; restarting the kernel stops it.
#
# Under Run All the panel shows zeros. Once students register, its column
# "public address (as the server sees it)" shows where they sit: private
# addresses such as `192.168.1.x` mean no NAT in between; many rows sharing
# one public IP address mean one NAT in front of them all.

# %%
from punchlab.classroom import notebook_server
from punchlab.widgets import ServerPanel

rendezvous = await notebook_server(SERVER_URL, host=CLASS_HOST)
teacher = ServerPanel(rendezvous.server) if rendezvous.server else None
teacher

# %% [markdown]
# ## Your panel
#
# Register, give your ID to a classmate (or take theirs), and connect. A
# classmate without the notebook runs `punchlab chat --server` with the same
# address.
#
# Where everyone sits decides which NATs are in the way:
#
# * **Everyone on one LAN, server included**: no NAT between anyone, so the
#   punch is trivial: the server hands out each student's own address. What
#   goes wrong is the network around the protocol: a firewall on the
#   teacher's machine (see above), or a Wi-Fi whose *AP isolation* "prevents
#   communication between wireless devices connected to this AP"
#   (NetworkManager, `802-11-wireless.ap-isolation`), so students may
#   register but no `HELLO` reaches a classmate.
# * **Students at home**: a server on a private address (such as
#   `192.168.1.20`) cannot be reached from the internet at all. The server
#   needs a public address (or a port forwarded to it), and then each student
#   punches through their own home router: compare with
#   [chapter 5](05-nat-types.ipynb). Forward both ports. Whether a pair
#   connects then depends on both routers' mapping and filtering, as in the
#   success matrix there.
# * **A class behind one campus NAT, server outside**: the server sees every
#   student at the same public address, and hands that out. A `HELLO` sent to
#   it must leave and come back in through the same NAT, which only works if
#   the NAT supports *hairpinning* (RFC 4787 REQ-9); Ford, Srisuresh and Kegel
#   (2005, §6) found UDP hairpinning in only 24% of the NATs they tested. The
#   other way is for peers to exchange and try their *private* endpoints too,
#   which punchlab does not do yet (Ford, Srisuresh and Kegel 2005, §3
#   describe it).

# %% [markdown]
# ## A class behind one NAT, on the simulator
#
# The last case is the one a lecturer meets most often, so try it here
# first. Alice and Bob sit behind the same campus NAT, a port-restricted cone
# (endpoint-independent mapping, address-and-port-dependent filtering); the
# server is outside.
#
# **Predict first**: which address will the server give Bob for Alice? And
# will their punch connect, with hairpinning off (`HAIRPINNING = False`)?

# %%
from punchlab.exercises import campus_address_question, campus_connect_question

CAMPUS_NAT = "port-restricted-cone"
HAIRPINNING = False
campus_address_question(lambda: CAMPUS_NAT)

# %%
campus_connect_question(lambda: CAMPUS_NAT, lambda: HAIRPINNING)

# %% [markdown]
# Run it: both students register, Alice asks for Bob, and the simulator runs
# the punch for five virtual seconds. The first table is the introduction:
# the server tells Bob that Alice is at the campus NAT's public address,
# because that is where her REGISTRATION came from. The second table lists
# the first `HELLO`s: each is sent to that public address (the `to` column),
# and the NAT, which does not hairpin, drops it. The diagram draws the same
# two `HELLO`s meeting their end at the NAT (the crosses, with the reason).
# Set `HAIRPINNING = True` above and run these cells again: the same NAT
# turns the `HELLO`s round, and the students connect directly.
#
# In the output, the route says how they ended up talking: `relayed` means
# the punch failed (neither student got a `SUCCESS` from the other) and the
# peers fell back to the last rung of punchlab's traversal ladder, the
# server's relay ([chapter 10](10-when-punching-gets-hard.ipynb)): they chat,
# but every line goes through the server.
# In the first table, `detail` (Alice, `198.51.100.1:5000`) and `to` (Bob,
# `198.51.100.1:49152`) are two ports on the NAT's one public address. The
# private `10.0.1.x` addresses appear only as the `from` of the `HELLO`s,
# though a datagram sent straight to one would arrive. The `... more events`
# are the retries, each sent and dropped the same way. In the diagram, both
# lines end in one cross on the NAT.
#
# With hairpinning on, the first `HELLO` may still be dropped, now "filtered
# by NAT". A hairpinning NAT rewrites the source to the sender's public
# endpoint (RFC 4787 §6, REQ-9), so Bob's filter lets Alice in only once Bob
# has sent to her public endpoint: the punch of
# [chapter 4](04-hole-punching.ipynb), inside one box.
# With `CAMPUS_NAT = "symmetric"` their punch fails even with hairpinning
# on, for the reason [chapter 5](05-nat-types.ipynb) gives for
# address-and-port-dependent mapping, and they relay.

# %%
from punchlab.diagram import sequence_diagram
from punchlab.scenes import campus

room = campus(CAMPUS_NAT, hairpinning=HAIRPINNING)
print("connected:", room.connected, "- route:", room.route.value if room.route else None)
print(room.net.trace.filter(types=["INITIATE_CHAT"], kinds=["sent"]).table())
print(room.net.trace.filter(types=["HELLO"]).table(limit=4))
_ = sequence_diagram(
    room.net.trace,
    actors=["Alice", "campus NAT", "Bob"],
    types=["HELLO", "SUCCESS"],
    time_range=(1.0, 1.05),
    addresses=True,
)

# %% [markdown]
# The panel below is a real peer: a UDP socket on this machine, bound to
# loopback when the server is on loopback, and to every address otherwise.
# Press Register, and its ID appears in the teacher's panel.

# %%
from punchlab.aio import Peer
from punchlab.widgets import PeerPanel

me = PeerPanel(Peer(rendezvous.url, host=rendezvous.peer_host, name="me"))
me

# %% [markdown]
# ## Drawing the whole class's traffic afterwards
#
# `punchlab chat --trace alice.jsonl` and `punchlab serve --trace server.jsonl`
# save every datagram. Collected from everyone into this notebook's folder, they
# merge into one picture (all clocks are close enough on one LAN). Without them,
# the cell draws what this kernel's own server and panel did.
#
# Under Run All this cell draws nothing useful: there are no `.jsonl` files
# and nothing has crossed the network yet, so it only prints a message.
# Register and connect with the panel first, then run it again.

# %%
from pathlib import Path

from punchlab.diagram import sequence_diagram
from punchlab.trace import Trace

collected = [Trace.load(path) for path in sorted(Path().glob("*.jsonl"))]
own = [me.peer.trace] + ([rendezvous.server.trace] if rendezvous.server else [])
merged = Trace.merge(*(collected or own))
if len(merged):
    _ = sequence_diagram(merged, collapse=True)
else:
    print("Nothing has crossed the network yet: register and connect above, then run this again.")

# %% [markdown]
# ## Summary
#
# * A rendezvous server started in this kernel, on loopback; under Run All
#   its panel showed no registrations.
# * A class needs `punchlab serve` with TCP 8088 and UDP 8089 open, and the
#   `punchlab chat --server` line it prints.
# * Seating decides what fails: a firewall or Wi-Fi isolation on one LAN,
#   two home routers, or hairpinning behind one campus NAT.
# * On the simulator, two students behind one port-restricted cone NAT
#   without hairpinning got its public address; every `HELLO` was dropped
#   ("no hairpinning"), the punch failed, and they chatted only through the
#   server's relay.
# * A real peer panel and a trace-merging cell ended the notebook.
#
# ## What comes next
#
# In [chapter 8, Real NATs](08-real-nats.ipynb), you build real NATs on one
# Linux machine with network namespaces and nftables, choose their
# behaviour, and run the same peers through them.
