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
#   other way is for peers to exchange and try their *private* endpoints too
#   (Ford, Srisuresh and Kegel 2005, §3; ICE's host candidates, RFC 8445
#   §5.1.1). punchlab's peers do: each tells the server its local address,
#   and the server passes it on to a partner behind the same public IP
#   ([chapter 12](12-one-nat-for-the-class.ipynb)).

# %% [markdown]
# ## A class behind one NAT, on the simulator
#
# The last case is the one a lecturer meets most often, so try it here
# first. Alice and Bob sit behind the same campus NAT, a port-restricted cone
# (endpoint-independent mapping, address-and-port-dependent filtering); the
# server is outside.
#
# **Predict first**: which address will the server give Bob for Alice? And
# with hairpinning off (`HAIRPINNING = False`), which way will they connect:
# `private` (each other's local address), `direct` or `peer-reflexive` (the
# public address), `relayed`, or not at all (`none`)?

# %%
from punchlab.exercises import campus_address_question, campus_route_question

CAMPUS_NAT = "port-restricted-cone"
HAIRPINNING = False
campus_address_question(lambda: CAMPUS_NAT)

# %%
campus_route_question(lambda: CAMPUS_NAT, lambda: HAIRPINNING)

# %% [markdown]
# Run it: both students register, Alice asks for Bob, and the simulator runs
# the punch for five virtual seconds. The first table is the introduction:
# the server tells Bob that Alice is at the campus NAT's public address,
# because that is where her REGISTRATION came from (and, in a `local` key the
# Go programs ignore, her private address, since both came from one public
# IP). The second table lists the first `HELLO`s. Each peer sends one to the
# public address (the `to` column), which the NAT, not hairpinning, drops,
# and one to the partner's private `10.0.1.x` address, which crosses the
# campus LAN and arrives: the route is `private`. The diagram draws both: the
# `HELLO`s to the public address end in a cross at the NAT (with the reason),
# the others go straight from student to student.
#
# Set `HAIRPINNING = True` above and run these cells again: the NAT now turns
# the public `HELLO`s round too, but the private ones are quicker (one LAN
# hop, not two) and the peers keep the private path, as ICE prefers host
# candidates (RFC 8445 §5.1.2.2). A hairpinning NAT rewrites the source to the
# sender's public endpoint (RFC 4787 §6, REQ-9), so Bob's filter lets a
# hairpinned `HELLO` in only once Bob has sent to Alice's public endpoint: the
# punch of [chapter 4](04-hole-punching.ipynb), inside one box. Chapter 12
# turns the private endpoints off to show what a class meets without them.

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
#   without hairpinning got its public address; every `HELLO` sent there was
#   dropped ("no hairpinning"), but the `HELLO`s to each other's private
#   address arrived, and they connected by the `private` route.
# * A real peer panel and a trace-merging cell ended the notebook.
#
# ## What comes next
#
# In [chapter 8, Real NATs](08-real-nats.ipynb), you build real NATs on one
# Linux machine with network namespaces and nftables, choose their
# behaviour, and run the same peers through them.
