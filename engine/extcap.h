#pragma once
namespace ehp {
bool is_extcap_call(int argc, char** argv);  // any --extcap-* / --capture / --fifo argument
int run_extcap(int argc, char** argv);
}  // namespace ehp
