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
# In class, the teacher runs the rendezvous server on a machine everyone can
# reach (HTTP port 8088 and UDP port 8089 open):
#
#     punchlab serve
#
# It prints the address students should use and logs every registration and
# introduction. Each student then either runs `punchlab chat --server
# http://TEACHER:8088` in a terminal, or uses the panel below.
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
#   punch is trivial.
# * **Students at home**: a server on a private address (such as
#   `192.168.1.20`) cannot be reached from the internet at all. The server
#   needs a public address (or a port forwarded to it), and then each student
#   punches through their own home router: compare with notebook 6.
# * **A class behind one campus NAT, server outside**: the server sees every
#   student at the same public address, and hands that out. A `HELLO` sent to
#   it must leave and come back in through the same NAT, which only works if
#   the NAT supports *hairpinning* (RFC 4787 REQ-9); Ford, Srisuresh and Kegel
#   (2005, §6) found UDP hairpinning in only 24% of the NATs they tested. The
#   other way is for peers to exchange and try their *private* endpoints too,
#   which punchlab does not do yet.

# %% [markdown]
# ## A class behind one NAT, on the simulator
#
# The last case is the one a lecturer meets most often, so try it here
# first. Alice and Bob sit behind the same campus NAT, a port-restricted cone
# (address-and-port-dependent filtering); the server is outside.
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
# turns the `HELLO`s round, and the students connect.

# %%
from punchlab.diagram import sequence_diagram
from punchlab.scenes import campus

room = campus(CAMPUS_NAT, hairpinning=HAIRPINNING)
print("connected:", room.connected)
print(room.net.trace.filter(types=["INITIATE_CHAT"], kinds=["sent"]).table())
print(room.net.trace.filter(types=["HELLO"]).table(limit=4))
_ = sequence_diagram(
    room.net.trace,
    actors=["Alice", "campus NAT", "Bob"],
    types=["HELLO", "SUCCESS"],
    time_range=(1.0, 1.05),
    addresses=True,
)

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
