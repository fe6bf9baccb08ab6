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
# # 12. One NAT for the whole class
#
# By the end of this notebook you will be able to:
#
# * say why a server on the internet sees a whole class at one address, and
#   what that does to a punch;
# * say what *hairpinning* is, how often NATs do it, and find the `HELLO` a
#   NAT without it drops;
# * explain how peers behind one NAT reach each other by their *private
#   endpoints*, and why punchlab trusts such an address only with the token;
# * predict how two homes behind a carrier-grade NAT connect.
#
# A lecturer's first live class rarely looks like chapter 5's picture of two
# homes, each behind its own router. More often every student sits behind
# the same campus NAT, and the rendezvous server is outside. And many homes
# are themselves behind their provider's NAT: Richter et al. ("A
# Multi-perspective Analysis of Carrier-Grade NAT Deployment", IMC 2016)
# found carrier-grade NAT in 13-18% of the non-cellular networks they
# measured and in over 92% of the cellular ones.

# %% [markdown]
# ## One public address for the whole class
#
# Four students behind one campus NAT register with the server. What does
# the server's table hold? The `local it claimed` column is new: each
# punchlab peer also tells the server its own address, in a `local` key of
# its REGISTRATION that the Go programs ignore.

# %%
from punchlab.exercises_one_nat import class_registrations

print(class_registrations())

# %% [markdown]
# Every student is at the NAT's one public address, `198.51.100.1`. The NAT
# kept the first student's port (5000) and gave the others new ones, since
# each public port can map only one inside endpoint. So the server hands Bob
# Alice's *public* endpoint, and a `HELLO` Bob sends there must leave through
# the campus NAT and come straight back in through the same box. RFC 4787
# calls that **hairpinning** (§6) and requires it (REQ-9), with the
# hairpinned datagram carrying the sender's public endpoint as its source.
# Many NATs do not do it: Ford, Srisuresh and Kegel ("Peer-to-Peer
# Communication Across Network Address Translators", USENIX 2005, Table 1)
# found UDP hairpinning in 24% of the NATs they tested.
#
# **Predict first.** Alice and Bob sit behind one port-restricted cone that
# does not hairpin. Suppose their peers knew only the public addresses the
# server saw (`private` off). Which way will they connect?

# %%
from punchlab.exercises import campus_route_question

campus_route_question(lambda: "port-restricted-cone", lambda: False, lambda: False)

# %% [markdown]
# ## Private endpoints
#
# Alice's and Bob's own addresses, `10.0.1.x`, need no NAT at all: they are
# on the same LAN. So punchlab's peer does what ICE does with its *host
# candidates* (RFC 8445 §5.1.1.1): it sends its first `HELLO`s to the
# partner's public endpoint **and** to its private one, at once, and keeps
# whichever answers (ICE ranks host candidates first, RFC 8445 §5.1.2.2). The route
# is then `private`.
#
# A private address is a claim from the network, so it is bounded:
#
# * the server keeps at most three per peer, and never a loopback,
#   link-local, multicast or global address (`punchlab.candidates`);
# * it passes them on only to a partner that registered from the same public
#   IP, the one case where they can help;
# * a `HELLO` to a private endpoint carries the introduction's token, and an
#   answer is adopted only with the token (chapter 6), so a stranger on the
#   campus LAN who happens to hold that address cannot take the chat over.
#
# **Predict**: with private endpoints on, and the same NAT without
# hairpinning, which way will they connect?

# %%
campus_route_question(lambda: "port-restricted-cone", lambda: False, lambda: True)

# %% [markdown]
# Run both: left, the peers know only the public addresses; right, they also
# try each other's private address. Both show the first two milliseconds of
# the punch on one shared time axis. On the left every `HELLO` ends in a cross at the campus
# NAT, "no hairpinning"; the pair climbs the traversal ladder to the
# server's relay (chapter 10). On the right the same public `HELLO`s still
# die at the NAT, but the ones to `10.0.1.x` cross the LAN in a millisecond
# and are answered with `SUCCESS`.

# %%
import matplotlib.pyplot as plt

from punchlab.diagram import sequence_diagram
from punchlab.scenes import campus

public_only = campus("port-restricted-cone", hairpinning=False, private=False)
with_private = campus("port-restricted-cone", hairpinning=False, private=True)
start = next(iter(with_private.net.trace.filter(types=["HELLO"], kinds=["sent"]))).time
fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.2), sharey=True, layout="constrained")
for ax, room, title in (
    (left, public_only, f"public addresses only: {public_only.route}"),
    (right, with_private, f"with private endpoints: {with_private.route}"),
):
    _ = sequence_diagram(
        room.net.trace,
        ax=ax,
        actors=["Alice", "campus NAT", "Bob"],
        types=["HELLO", "SUCCESS"],
        time_range=(start, start + 0.0021),
        addresses=True,
    )
    ax.set_title(title)

# %% [markdown]
# With hairpinning on, the public `HELLO`s would come back in too; the
# private ones still arrive first (one LAN crossing, not two), and the peers
# keep the private path. Change `hairpinning=` above to see it.
#
# ## NAT behind NAT: carrier-grade NAT
#
# A provider short of IPv4 addresses puts its own NAT, a **carrier-grade
# NAT** (CGN), in front of its customers' home routers. Between the two it
# uses the *shared address space* `100.64.0.0/10`, set aside for exactly
# this (RFC 6598), so it cannot clash with the `10.x` or `192.168.x` a home
# already uses. RFC 6888 lists what a CGN must do. Its REQ-1 makes RFC
# 4787's requirements apply to it, so a CGN should map
# endpoint-independently (RFC 4787 REQ-1) and hairpin (REQ-9). Its REQ-2
# keeps a customer on one public address ("paired" pooling), and its REQ-4
# limits the ports each customer may hold. The simulator's `carrier-grade`
# NAT does the first two: it maps endpoint-independently, filters by
# address, hairpins, and picks its public ports at random.
#
# A home behind a CGN is behind two NATs: a datagram is translated twice on
# the way out, and must get through both filters on the way in.
#
# **Predict**: Alice's and Bob's homes both have a port-restricted cone, and
# both sit behind the *same* CGN. Which way will they connect? (Hint: what
# address does the server see for each, and which box turns a `HELLO` round?)

# %%
from punchlab.exercises_one_nat import cgn_route_question

cgn_route_question(lambda: "same", lambda: "port-restricted-cone", lambda: "port-restricted-cone")

# %% [markdown]
# The two matrices below run every pair of the classic presets (chapter 5)
# with the traversal ladder and RFC 5780 discovery (chapters 9 and 10).
# On the left both homes are behind one CGN; on the right each is behind
# its own. A row is A's home NAT, a column B's; `none` means a host straight
# on the CGN's shared network, with no home router.

# %%
from punchlab.diagram import route_matrix_diagram
from punchlab.sim import success_matrix

KINDS = ("none", "full-cone", "restricted-cone", "port-restricted-cone", "symmetric")
same_cgn = success_matrix(KINDS, cgn="same", discover=True)
different_cgns = success_matrix(KINDS, cgn="different", discover=True)
fig, axes = plt.subplots(1, 2, figsize=(13, 6.2), layout="constrained")
for ax, matrix, title in (
    (axes[0], same_cgn, "both homes behind one CGN"),
    (axes[1], different_cgns, "each home behind its own CGN"),
):
    _ = route_matrix_diagram(
        matrix, ax=ax, title=title, rows="A's home NAT", columns="B's home NAT"
    )

# %% [markdown]
# What the matrices show:
#
# * **Behind one CGN**, the server sees both homes at the CGN's one public
#   address, so it passes on their private addresses; but those are in two
#   different homes and do not help (their `HELLO`s die as "unknown
#   destination"; had both homes used the same `192.168.1.0/24`, they would
#   have reached whatever host holds that address in the sender's own home:
#   a few `HELLO`s, carrying a token it cannot use). The CGN's hairpinning
#   is what connects most pairs:
#   `direct` between cones. Only two hosts with no home router, both on the
#   CGN's shared network, connect by `private`.
# * **Behind different CGNs**, each home is behind two NATs in a row. The
#   CGNs map endpoint-independently, so the outer NAT adds no new difficulty
#   and the cones connect `direct`, as in chapter 5.
# * A symmetric home NAT needs the ladder in both. Birthday probing connects
#   it to an easy side, but 1,024 probes miss about 2% of the time (chapter
#   10): in this run, seed 0, the probes of `port-restricted-cone` x
#   `symmetric` all missed and that pair relayed, in both matrices. Two
#   symmetric homes relay.
# * Behind one CGN, the partner's public IP is the peer's own public IP too,
#   so a hairpinning CGN can turn one of a peer's own birthday probes back to
#   it. Each `HELLO` a punchlab peer starts carries a sender tag (a hash, in
#   a key the Go programs ignore), so a peer never takes its own for the
#   partner's.
#
# ## In the real lab
#
# The same cases run on the kernel's own NATs (chapter 8), as root:
#
# * `sudo punchlab netlab punch --same-nat` puts two peers behind one NAT
#   without hairpinning (they connect `private`); add `--no-private` to watch
#   every `HELLO` die at the NAT, and `--hairpin` for a NAT that turns them
#   round (plain masquerade does not; the lab adds the rewrite rules).
# * `sudo punchlab netlab punch --cgn same` and `--cgn different` put the
#   two home NATs behind carrier-grade NATs on `100.64.0.0/10`.

# %% [markdown]
# ## Exercise: which route will a campus pair take?
#
# Write `campus_route(kind, hairpinning, private)`: the route two students
# behind one campus NAT of `kind` connect by, with the traversal ladder but
# without RFC 5780 discovery, as `"private"`, `"direct"`, `"peer-reflexive"`,
# `"relayed"` or `"none"`. `hairpinning` says whether the NAT turns a
# datagram round, `private` whether the peers try private endpoints. The
# check runs the simulator for each case.


# %% tags=["exercise-stub", "exercise:12-campus-route"]
def campus_route(kind, hairpinning, private):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:12-campus-route"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["12-campus-route"]()
exercise.check()

# %% [markdown]
# ## Summary
#
# * Behind one NAT, a whole class reaches the server from one public
#   address; a `HELLO` to a classmate's public endpoint must hairpin, which
#   RFC 4787 requires (REQ-9) but only 24% of the NATs Ford et al. tested
#   did.
# * punchlab's peers also try each other's private endpoints, like ICE's host
#   candidates; the server passes them only between peers behind the same
#   public IP, bounded, and answers count only with the token. The route is
#   then `private`, hairpinning or not.
# * A carrier-grade NAT (RFC 6888, on RFC 6598's `100.64.0.0/10`) puts homes
#   behind two NATs. Endpoint-independent and hairpinning, it changes little
#   for cones; behind one CGN, its hairpinning, not the private endpoints,
#   connects the homes.
#
# ## What comes next
#
# [Chapter 13](13-ipv6-firewalls.ipynb) leaves translation behind: with
# IPv6 every host has its own public address, and a firewall still decides
# what gets in.
