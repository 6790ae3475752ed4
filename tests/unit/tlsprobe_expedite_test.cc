// SPDX-License-Identifier: BSD-2-Clause
// The RCU knob guard of late attaches (engine/tlsprobe/expedite.h), on stand-in files of the same
// form as /sys/kernel/rcu_expedited and rcu_normal ("0\n"): set only when it reads 0, put back
// when the attach ends, someone else's value left as it is, refused when rcu_normal overrides
// it. (e2e_tls_late runs it against the kernel's own knob.)
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tlsprobe/expedite.h"

using ehp::tlsprobe::RcuExpedite;

namespace {

struct KnobDir {
  std::string dir;
  KnobDir(const char* expedited, const char* normal) {
    char tmpl[] = "/tmp/ehp-rcu-XXXXXX";
    dir = mkdtemp(tmpl);
    put("rcu_expedited", expedited);
    if (normal) put("rcu_normal", normal);
  }
  ~KnobDir() {
    unlink((dir + "/rcu_expedited").c_str());
    unlink((dir + "/rcu_normal").c_str());
    rmdir(dir.c_str());
  }
  void put(const std::string& name, const char* v) const { std::ofstream(dir + "/" + name) << v; }
  std::string get() const {
    std::stringstream ss;
    ss << std::ifstream(dir + "/rcu_expedited").rdbuf();
    return ss.str();
  }
};

TEST(RcuExpedite, SetForTheScopeOnlyThenPutBack) {
  KnobDir k("0\n", "0\n");
  RcuExpedite r;
  std::string why;
  ASSERT_TRUE(r.open(k.dir, &why)) << why;
  {
    RcuExpedite::Scope s(r);
    EXPECT_TRUE(s.set());
    EXPECT_EQ(k.get(), "1\n");
  }
  EXPECT_EQ(k.get(), "0\n");
  {
    RcuExpedite::Scope s(r);  // again for the next late attach
    EXPECT_TRUE(s.set());
    EXPECT_EQ(k.get(), "1\n");
  }
  EXPECT_EQ(k.get(), "0\n");
  EXPECT_EQ(r.times_set(), 2u);
}

TEST(RcuExpedite, SomeoneElsesValueIsLeftAlone) {
  KnobDir k("1\n", "0\n");
  RcuExpedite r;
  std::string why;
  ASSERT_TRUE(r.open(k.dir, &why)) << why;
  {
    RcuExpedite::Scope s(r);
    EXPECT_FALSE(s.set());
  }
  EXPECT_EQ(k.get(), "1\n");  // not reset to 0 by us
  EXPECT_EQ(r.times_set(), 0u);
}

TEST(RcuExpedite, RefusedWhenRcuNormalOverridesIt) {
  KnobDir k("0\n", "1\n");
  RcuExpedite r;
  std::string why;
  EXPECT_FALSE(r.open(k.dir, &why));
  EXPECT_NE(why.find("rcu_normal"), std::string::npos) << why;
  RcuExpedite::Scope s(r);  // harmless when unusable
  EXPECT_FALSE(s.set());
  EXPECT_EQ(k.get(), "0\n");
}

TEST(RcuExpedite, RefusedWhenMissingOrASymlink) {
  RcuExpedite r;
  std::string why;
  EXPECT_FALSE(r.open("/nonexistent-ehp", &why));
  EXPECT_NE(why.find("rcu_expedited"), std::string::npos) << why;
  KnobDir k("0\n", "0\n");
  KnobDir link("0\n", "0\n");
  unlink((link.dir + "/rcu_expedited").c_str());
  ASSERT_EQ(symlink((k.dir + "/rcu_expedited").c_str(), (link.dir + "/rcu_expedited").c_str()), 0);
  RcuExpedite r2;
  EXPECT_FALSE(r2.open(link.dir, &why));  // O_NOFOLLOW: a planted link is not written through
}

}  // namespace
