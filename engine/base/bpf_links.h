// SPDX-License-Identifier: BSD-2-Clause
// Detaching many BPF links at once. Closing a uprobe's or tracepoint's perf event waits for the
// kernel to unregister it (an RCU grace period and more: 70-120 ms each on this VM), and one
// after the other a TLS probe's and the capture's links took ~1 s at every stop, past the 1 s a
// user's Ctrl-C is given to end (e2e_security). Destroyed on one thread each, the waits overlap.
#pragma once
#include <bpf/libbpf.h>

#include <thread>
#include <vector>

namespace ehp {

inline void destroy_links(std::vector<bpf_link*>& links) {
  std::vector<std::thread> threads;
  threads.reserve(links.size());
  for (bpf_link* l : links) {
    if (!l) continue;
    try {
      threads.emplace_back([l] { bpf_link__destroy(l); });
    } catch (...) {  // no thread to be had: this one waits its turn
      bpf_link__destroy(l);
    }
  }
  for (auto& t : threads) t.join();
  links.clear();
}

}  // namespace ehp
