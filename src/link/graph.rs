//! The asset graph: strongly connected components in dependency order, so
//! that names can be assigned bottom-up and a cycle (modules that import each
//! other) is named as one unit. Iterative, so deep chains cannot overflow the
//! stack.

/// Strongly connected components of the graph with `edges[v]` the successors
/// of `v`, each sorted, listed so that every component comes after all the
/// components it reaches (dependencies first).
pub fn components(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNVISITED: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut out = Vec::new();
    // (node, position in its edge list)
    let mut call: Vec<(usize, usize)> = Vec::new();

    for root in 0..n {
        if index[root] != UNVISITED {
            continue;
        }
        call.push((root, 0));
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if *pos == 0 && index[v] == UNVISITED {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*pos) {
                *pos += 1;
                if index[w] == UNVISITED {
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                out.push(component);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_cycles_are_one_unit() {
        // 0 -> 1 -> 2 -> 1, 0 -> 3
        let edges = vec![vec![1, 3], vec![2], vec![1], vec![]];
        let got = components(&edges);
        let pos = |c: &[usize]| got.iter().position(|x| x == c).unwrap();
        assert!(pos(&[1, 2]) < pos(&[0]));
        assert!(pos(&[3]) < pos(&[0]));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn deep_chains_do_not_overflow() {
        let n = 200_000;
        let edges: Vec<Vec<usize>> = (0..n)
            .map(|i| if i + 1 < n { vec![i + 1] } else { vec![] })
            .collect();
        let got = components(&edges);
        assert_eq!(got.len(), n);
        assert_eq!(got[0], [n - 1]);
    }
}
