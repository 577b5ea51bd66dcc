/**
 * The branch tree of a conversation. Every turn names the turn it follows (`parent`, 0 = the
 * root); turns with the same parent are siblings (versions made by edit or regenerate). The
 * branch shown is the chain of parents from `head` up to the root. Pure functions over any
 * records with a seq and a parent, so the UI and the tests share one definition.
 */

export interface BranchNode {
  /** The turn number; undefined while a new turn waits to be accepted by the server. */
  readonly seq: number | undefined;
  /** The turn it follows; undefined when not known (yet): such a turn follows the branch shown. */
  readonly parent: number | undefined;
}

/** The root's seq: a first turn has parent 0. */
export const ROOT = 0;

/**
 * The turns of the branch that ends at `head`, oldest first. A parent that is not among the
 * turns ends the walk there (history trimmed to its newest part); a cycle (corrupt data) too.
 */
export function branchPath<T extends BranchNode>(nodes: readonly T[], head: number): T[] {
  const bySeq = new Map<number, T>();
  for (const node of nodes) if (node.seq !== undefined) bySeq.set(node.seq, node);
  const path: T[] = [];
  const seen = new Set<number>();
  let current = bySeq.get(head);
  while (current?.seq !== undefined && !seen.has(current.seq)) {
    seen.add(current.seq);
    path.push(current);
    current = current.parent === undefined ? undefined : bySeq.get(current.parent);
  }
  return path.reverse();
}

export interface Siblings<T> {
  /** The turns with the same parent, oldest first; turns not yet accepted come last. */
  readonly all: readonly T[];
  /** Position of the turn among them, 0-based. */
  readonly index: number;
}

/**
 * The versions of a turn: itself and every turn that follows the same parent. `groups`: the
 * result of siblingGroups(nodes) when the caller asks for many turns of one conversation.
 */
export function siblingsOf<T extends BranchNode>(nodes: readonly T[], node: T, groups: ReadonlyMap<number, readonly T[]> = siblingGroups(nodes)): Siblings<T> {
  const all = node.parent === undefined ? [node] : (groups.get(node.parent) ?? [node]);
  return { all, index: Math.max(0, all.indexOf(node)) };
}

/**
 * Every turn's versions at once, by parent (oldest first, turns not yet accepted last): one pass
 * over the conversation, for drawing a switcher on each turn shown.
 */
export function siblingGroups<T extends BranchNode>(nodes: readonly T[]): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const node of nodes) {
    if (node.parent === undefined) continue;
    const group = groups.get(node.parent);
    if (group === undefined) groups.set(node.parent, [node]);
    else group.push(node);
  }
  for (const group of groups.values()) group.sort(bySeqThenLocal);
  return groups;
}

function bySeqThenLocal(a: BranchNode, b: BranchNode): number {
  if (a.seq === undefined || b.seq === undefined) return (a.seq === undefined ? 1 : 0) - (b.seq === undefined ? 1 : 0);
  return a.seq - b.seq;
}

/**
 * The newest turn under `seq` (itself included): where a switch to `seq` lands. Turns only ever
 * follow older turns, so the descendant with the highest seq has no children: it is a leaf.
 */
export function newestLeaf(nodes: readonly BranchNode[], seq: number): number {
  const children = new Map<number, number[]>();
  for (const node of nodes) {
    if (node.seq === undefined || node.parent === undefined) continue;
    const list = children.get(node.parent) ?? [];
    list.push(node.seq);
    children.set(node.parent, list);
  }
  let newest = seq;
  const stack = [seq];
  const seen = new Set<number>();
  for (let current = stack.pop(); current !== undefined; current = stack.pop()) {
    if (seen.has(current)) continue;
    seen.add(current);
    newest = Math.max(newest, current);
    stack.push(...(children.get(current) ?? []));
  }
  return newest;
}

/**
 * Fills in parents for a history from a server that does not record them (before branches, or
 * an anonymous original-API session): each turn follows the one before it.
 */
export function linearParents(seqs: readonly number[]): Map<number, number> {
  const parents = new Map<number, number>();
  let previous = ROOT;
  for (const seq of [...seqs].sort((a, b) => a - b)) {
    parents.set(seq, previous);
    previous = seq;
  }
  return parents;
}
