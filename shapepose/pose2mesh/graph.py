"""The graphs MeshNet convolves over: the coarsened body mesh (heavy-edge matching) and the joints.

Pose2Mesh (after Defferrard et al.'s spectral graph CNNs) coarsens the template mesh `levels`
times by heavy-edge matching: vertices are visited in order of increasing degree, and each
unmatched vertex i pairs with the unmatched neighbour j maximising the normalized cut weight
(2 W_ij + W_ii + W_jj) / (d_i + d_j) (Graclus), or stays alone. Matched pairs and singletons become
the vertices of the next level, whose edge weights are the sums of the weights between clusters.
(W_ii is the diagonal: the weight inside a cluster. The release reads the first stored entry of
row i instead, which is the diagonal only when the row has one and it comes first; vertices are
visited in a stable sort by degree, so the matching, like everything else, is the same every run.)

The levels are then renumbered into a binary tree: the coarsest level keeps its order, and
coarse vertex i of level l + 1 has children 2i and 2i + 1 in level l. A singleton's second child,
and both children of a fake coarse vertex, are *fake* vertices: isolated (no edges), appended
beyond the real ones, so that level l has exactly M_last * 2^(levels - l) vertices and upsampling
by repetition (child 2i and 2i + 1 copy parent i) walks the tree. `reverse` maps every real
vertex to its position in the finest level.

The Chebyshev convolution needs each Laplacian rescaled to spectrum [-1, 1]:
L~ = 2 L / lambda_max - I. The released code computes `L / (2 lambda_max) - I` (spectrum
[-1, -0.5]) and never rescales the joint graph's Laplacian (spectrum [0, 2]). `rescale` offers
both: "corrected" (the formula above, on every graph) and "faithful" (the release's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg

RESCALINGS = ("corrected", "faithful")


def mesh_adjacency(faces: np.ndarray, n_vertices: int) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency (V, V) float64 of a triangle mesh's edges."""
    faces = np.asarray(faces, dtype=np.int64)
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    adj = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n_vertices, n_vertices)).tocsr()
    adj = adj + adj.T
    adj.data[:] = 1.0
    adj.setdiag(0)
    adj.eliminate_zeros()
    return adj.tocsr()


def joint_adjacency(n_joints: int, skeleton, flip_pairs) -> sp.csr_matrix:
    """The joint graph of the release: bones, left/right pairs and self loops, all weight 1."""
    adj = np.eye(n_joints)
    for a, b in list(skeleton) + list(flip_pairs):
        adj[a, b] = adj[b, a] = 1.0
    return sp.csr_matrix(adj)


def normalized_laplacian(adj: sp.spmatrix) -> sp.csr_matrix:
    """L = I - D^-1/2 W D^-1/2 (an isolated vertex has L_ii = 1)."""
    adj = sp.csr_matrix(adj, dtype=np.float64)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0)
    d = sp.diags(inv_sqrt)
    return sp.csr_matrix(sp.identity(adj.shape[0]) - d @ adj @ d)


def largest_eigenvalue(laplacian: sp.spmatrix) -> float:
    """lambda_max of a symmetric Laplacian (a fixed start vector: the same value on every run)."""
    n = laplacian.shape[0]
    if n <= 200:
        return float(np.linalg.eigvalsh(laplacian.toarray())[-1])
    v0 = np.ones(n) / np.sqrt(n)
    return float(scipy.sparse.linalg.eigsh(laplacian, k=1, which="LA", v0=v0,
                                           return_eigenvectors=False)[0])


def rescale(laplacian: sp.spmatrix, mode: str, *, joint_graph: bool = False) -> sp.csr_matrix:
    """The Laplacian the Chebyshev convolution uses; see the module docstring for the two modes."""
    if mode not in RESCALINGS:
        raise ValueError(f"rescaling must be one of {RESCALINGS}, got {mode!r}")
    laplacian = sp.csr_matrix(laplacian, dtype=np.float64)
    eye = sp.identity(laplacian.shape[0], format="csr")
    lmax = largest_eigenvalue(laplacian)
    if mode == "corrected":
        return sp.csr_matrix(2.0 * laplacian / lmax - eye)
    if joint_graph:  # the release leaves the joint graph as it is
        return laplacian
    return sp.csr_matrix(laplacian / (2.0 * lmax) - eye)


def heavy_edge_matching(adj: sp.csr_matrix) -> np.ndarray:
    """One level of Graclus heavy-edge matching: cluster id (N,) int64 of every vertex."""
    adj = sp.csr_matrix(adj)
    n = adj.shape[0]
    degree = np.asarray(adj.sum(axis=1)).ravel()
    diagonal = adj.diagonal()
    order = np.argsort(degree, kind="stable")
    cluster = np.full(n, -1, dtype=np.int64)
    count = 0
    for i in order:
        if cluster[i] >= 0:
            continue
        cluster[i] = count
        row = slice(adj.indptr[i], adj.indptr[i + 1])
        best, best_score = -1, 0.0
        for j, w in zip(adj.indices[row], adj.data[row]):
            if j == i or cluster[j] >= 0:
                continue
            score = (2.0 * w + diagonal[i] + diagonal[j]) / (degree[i] + degree[j] + 1e-9)
            if score > best_score:
                best, best_score = j, score
        if best >= 0:
            cluster[best] = count
        count += 1
    return cluster


def coarser_graph(adj: sp.csr_matrix, cluster: np.ndarray) -> sp.csr_matrix:
    """Edge weights between clusters (sums, self loops kept: weight inside a cluster)."""
    coo = sp.coo_matrix(adj)
    m = int(cluster.max()) + 1
    out = sp.coo_matrix((coo.data, (cluster[coo.row], cluster[coo.col])), shape=(m, m)).tocsr()
    out.sum_duplicates()
    out.eliminate_zeros()
    return out


def tree_orders(parents: list[np.ndarray]) -> list[np.ndarray]:
    """Per level, the vertex (or fake vertex, index >= the level's real count) at each position.

    parents[l] (N_l,) gives each vertex of level l its cluster in level l + 1. The coarsest level
    keeps its order; the children of the vertex at position i of level l + 1 take positions 2i
    and 2i + 1 of level l.
    """
    orders = [np.arange(int(parents[-1].max()) + 1)]
    for parent in parents[::-1]:
        n_real = len(parent)
        children = [[] for _ in range(int(parent.max()) + 1)]
        for vertex, p in enumerate(parent):
            children[p].append(vertex)
        next_fake = n_real
        order = []
        for p in orders[-1]:
            kids = list(children[p]) if p < len(children) else []
            if len(kids) > 2:
                raise AssertionError("heavy-edge matching made a cluster of more than two")
            while len(kids) < 2:
                kids.append(next_fake)
                next_fake += 1
            order.extend(kids)
        orders.append(np.asarray(order, dtype=np.int64))
    return orders[::-1]


def permute(adj: sp.csr_matrix, order: np.ndarray) -> sp.csr_matrix:
    """The graph renumbered to `order`, padded with isolated fake vertices."""
    m = len(order)
    position = np.empty(m, dtype=np.int64)
    position[order] = np.arange(m)
    coo = sp.coo_matrix(adj)
    return sp.coo_matrix((coo.data, (position[coo.row], position[coo.col])), shape=(m, m)).tocsr()


@dataclass
class MeshGraphs:
    """The coarsening hierarchy of one mesh.

    adjacencies[l]: level l's graph in tree order, fake vertices included ((M_l, M_l), level 0 is
    the mesh); orders[l] (M_l,): original vertex (or fake, >= n_real[l]) at each position;
    reverse (V,): the finest-level position of each mesh vertex.
    """

    adjacencies: list[sp.csr_matrix]
    orders: list[np.ndarray]
    n_real: list[int]
    reverse: np.ndarray

    @property
    def sizes(self) -> list[int]:
        return [a.shape[0] for a in self.adjacencies]


def coarsen(adj: sp.csr_matrix, levels: int) -> MeshGraphs:
    """`levels` rounds of heavy-edge matching, renumbered into a binary tree."""
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    graphs, parents = [sp.csr_matrix(adj)], []
    for _ in range(levels):
        cluster = heavy_edge_matching(graphs[-1])
        parents.append(cluster)
        graphs.append(coarser_graph(graphs[-1], cluster))
    orders = tree_orders(parents)
    adjacencies = [permute(g, o) for g, o in zip(graphs, orders)]
    n_vertices = adj.shape[0]
    reverse = np.empty(n_vertices, dtype=np.int64)
    real = orders[0] < n_vertices
    reverse[orders[0][real]] = np.nonzero(real)[0]
    return MeshGraphs(adjacencies, orders, [g.shape[0] for g in graphs], reverse)


def network_laplacians(faces: np.ndarray, n_vertices: int, n_joints: int, skeleton, flip_pairs,
                       levels: int, rescaling: str) -> tuple[list[sp.csr_matrix], MeshGraphs]:
    """The Laplacians MeshNet uses, finest first: mesh levels 0 .. levels - 2, then the joints.

    As released: the mesh is coarsened `levels` times, the coarsest level is replaced by the
    joint graph and the second coarsest is dropped, so the fully connected layer maps the joints
    to level levels - 2 and levels - 2 upsamplings reach the mesh.
    """
    if levels < 3:
        raise ValueError(f"coarsening levels must be >= 3 (two are not used), got {levels}")
    graphs = coarsen(mesh_adjacency(faces, n_vertices), levels)
    mesh = [rescale(normalized_laplacian(a), rescaling) for a in graphs.adjacencies[:levels - 1]]
    joints = rescale(normalized_laplacian(joint_adjacency(n_joints, skeleton, flip_pairs)),
                     rescaling, joint_graph=True)
    return mesh + [joints], graphs
