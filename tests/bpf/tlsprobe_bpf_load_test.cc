// SPDX-License-Identifier: BSD-2-Clause
// The kernel's verifier accepts bpf/openssl.bpf.c with every offset table row (the 1.1.1 row
// takes the s3-pointer path) in both secrets and -m text configurations, and with -p/-u set.
// Loads only; nothing is attached. Needs root (label bpf).
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cstring>

#include "tlsprobe/libssl.h"  // the ABI structs; must precede the skeleton, which uses them
#include "openssl.skel.h"

using namespace ehp::tlsprobe;

TEST(TlsProbeBpf, EveryTableRowLoads) {
  for (auto& row : offset_table()) {
    for (bool text : {false, true}) {
      struct openssl* skel = openssl__open();
      ASSERT_NE(skel, nullptr);
      memcpy(const_cast<ehp_tls_offsets*>(&skel->rodata->off), &row.off, sizeof row.off);
      skel->rodata->capture_plaintext = text;
      skel->rodata->targ_pid = 1;
      skel->rodata->filter_uid = true;
      int rc = openssl__load(skel);
      EXPECT_EQ(rc, 0) << "row " << row.series << (text ? " text" : " secrets") << ": " << strerror(-rc);
      openssl__destroy(skel);
    }
  }
}
