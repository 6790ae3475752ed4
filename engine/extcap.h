// SPDX-License-Identifier: BSD-2-Clause
#pragma once
#include <string>
#include <vector>

namespace ehp {
std::vector<std::string> system_interfaces();  // names from /proc/net/dev
bool is_extcap_call(int argc, char** argv);  // any --extcap-* / --capture / --fifo argument
int run_extcap(int argc, char** argv);
}  // namespace ehp
