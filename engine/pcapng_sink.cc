#include "pcapng_sink.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>

#include "output/pcapng.h"

namespace ehp {

uint64_t wall_clock_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

namespace {

std::string os_string() {
  utsname u{};
  if (uname(&u) != 0) return "Linux";
  return std::string(u.sysname) + " " + u.release;
}

std::string hw_string() {
  utsname u{};
  if (uname(&u) != 0) return "";
  return u.machine;
}

// "pid=1234 tid=1234 uid=0 comm=curl" without printf on the hot path.
size_t format_comment(const correlate::PacketMeta& m, char* out, size_t cap) {
  char* p = out;
  char* end = out + cap;
  auto put = [&](const char* s) {
    size_t n = strlen(s);
    if (p + n > end) n = size_t(end - p);
    memcpy(p, s, n);
    p += n;
  };
  auto num = [&](uint32_t v) {
    auto r = std::to_chars(p, end, v);
    p = r.ptr;
  };
  put("pid=");
  num(m.pid);
  put(" tid=");
  num(m.tid);
  put(" uid=");
  num(m.uid);
  put(" comm=");
  size_t n = strnlen(m.comm, sizeof(m.comm));
  if (p + n > end) n = size_t(end - p);
  memcpy(p, m.comm, n);
  p += n;
  return size_t(p - out);
}

}  // namespace

PcapngSink::PcapngSink(const SinkOptions& o, std::vector<SinkIface> ifaces)
    : opt_(o), ifaces_(std::move(ifaces)), ifc_(ifaces_.size()) {}

PcapngSink::~PcapngSink() {
  std::string e;
  if (writer_) close(&e);
}

std::unique_ptr<PcapngSink> PcapngSink::open(const SinkOptions& o, std::vector<SinkIface> ifaces,
                                             std::string* err) {
  if ((o.rotate_bytes || o.rotate_duration_ns) && o.path == "-") {
    *err = "-b (ring buffer) cannot be used with -w - (standard output)";
    return nullptr;
  }
  std::unique_ptr<PcapngSink> s(new PcapngSink(o, std::move(ifaces)));
  if (!s->open_file(wall_clock_ns(), err)) return nullptr;
  return s;
}

std::string PcapngSink::next_name(uint64_t now_ns) {
  if (!opt_.rotate_bytes && !opt_.rotate_duration_ns) return opt_.path;
  // dumpcap's naming: prefix_00001_YYYYmmddHHMMSS.ext
  std::string prefix = opt_.path, ext;
  auto slash = prefix.find_last_of('/');
  auto dot = prefix.find_last_of('.');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
    ext = prefix.substr(dot);
    prefix.resize(dot);
  }
  time_t t = time_t(now_ns / 1'000'000'000ull);
  tm tmv{};
  localtime_r(&t, &tmv);
  char buf[64];
  snprintf(buf, sizeof buf, "_%05u_%04d%02d%02d%02d%02d%02d", file_seq_, tmv.tm_year + 1900,
           tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec);
  return prefix + buf + ext;
}

bool PcapngSink::put_block(const void* src, size_t n) {
  uint8_t* p = writer_ ? writer_->reserve(n) : nullptr;
  if (!p) {
    stats_.write_failures++;
    return false;
  }
  memcpy(p, src, n);
  writer_->commit(n);
  stats_.file_bytes += n;
  return true;
}

bool PcapngSink::open_file(uint64_t now_ns, std::string* err) {
  ++file_seq_;
  std::string name = next_name(now_ns);
  output::WriterOptions wo;
  wo.direct = opt_.direct_io;
  writer_ = output::Writer::open(name, wo, err);
  if (!writer_) return false;
  files_written_.push_back(name);
  stats_.files++;
  stats_.file_bytes = 0;
  file_start_ns_ = now_ns;
  for (auto& c : ifc_) c = IfCounters{.ifdrop = c.ifdrop, .osdrop = c.osdrop};

  std::vector<uint8_t> buf(4096);
  std::string os = os_string(), hw = hw_string();
  pcapng::ShbInfo shb{.hardware = hw, .os = os, .userappl = "ecapture-hp 0.1.0"};
  buf.resize(pcapng::shb_size(shb));
  if (!pcapng::encode_shb(buf, shb) || !put_block(buf.data(), buf.size())) goto fail;
  for (auto& i : ifaces_) {
    pcapng::IdbInfo idb{.linktype = i.linktype, .snaplen = opt_.snaplen, .name = i.name,
                        .description = i.description, .filter = opt_.filter, .tsresol = 9};
    buf.resize(pcapng::idb_size(idb));
    if (!pcapng::encode_idb(buf, idb) || !put_block(buf.data(), buf.size())) goto fail;
  }
  // A rotated file must stand alone: repeat the keys of recent sessions, which may still be open.
  if (file_seq_ > 1) {
    for (auto& d : recent_dsb_) {
      buf.resize(pcapng::dsb_size(d));
      if (!pcapng::encode_dsb(buf, d) || !put_block(buf.data(), buf.size())) goto fail;
    }
  }
  // Ring of N files: remove the oldest beyond N.
  if (opt_.ring_files && files_written_.size() > opt_.ring_files) {
    unlink(files_written_.front().c_str());
    files_written_.erase(files_written_.begin());
  }
  return true;
fail:
  *err = writer_->failed() ? writer_->error() : "pcapng: cannot encode header blocks";
  return false;
}

bool PcapngSink::finish_file(std::string* err) {
  if (!writer_) return true;
  bool ok = true;
  uint64_t now = last_ts_ns_ ? std::max(last_ts_ns_, wall_clock_ns()) : wall_clock_ns();
  std::vector<uint8_t> buf;
  for (uint32_t i = 0; i < ifaces_.size(); ++i) {
    pcapng::IsbInfo isb{.interface_id = i, .ts_ns = now, .starttime_ns = file_start_ns_,
                        .endtime_ns = now, .ifrecv = ifc_[i].recv, .ifdrop = ifc_[i].ifdrop,
                        .osdrop = ifc_[i].osdrop, .usrdeliv = ifc_[i].delivered};
    buf.resize(pcapng::isb_size(isb));
    if (!pcapng::encode_isb(buf, isb) || !put_block(buf.data(), buf.size())) ok = false;
  }
  std::string e;
  if (!writer_->close(&e)) {
    ok = false;
    if (err) *err = e;
    error_ = e;
  }
  writer_.reset();
  return ok;
}

void PcapngSink::packet(const correlate::PacketMeta& m, std::span<const uint8_t> frame) {
  if (!writer_) return;
  if (opt_.rotate_bytes && stats_.file_bytes >= opt_.rotate_bytes) {
    std::string e;
    finish_file(&e);
    if (!open_file(std::max(m.ts_ns, wall_clock_ns()), &e)) {
      error_ = e;
      return;
    }
  }
  char comment[80];
  pcapng::EpbInfo epb{};
  epb.interface_id = m.interface_id;
  epb.ts_ns = m.ts_ns;
  epb.caplen = uint32_t(frame.size());
  epb.origlen = m.wire_len;
  epb.flags = m.direction ? 2u : 1u;
  if (m.attributed) {
    epb.comment = std::string_view(comment, format_comment(m, comment, sizeof comment));
    epb.has_pid_tid = true;
    epb.pid = m.pid;
    epb.tid = m.tid;
  }
  size_t n = pcapng::epb_size(epb);
  uint8_t* p = writer_->reserve(n);
  if (!p) {
    stats_.write_failures++;
    return;
  }
  pcapng::encode_epb(std::span<uint8_t>(p, n), epb, frame);
  writer_->commit(n);
  stats_.file_bytes += n;
  stats_.packets++;
  stats_.bytes += frame.size();
  last_ts_ns_ = m.ts_ns;
  if (m.interface_id < ifc_.size()) {
    ifc_[m.interface_id].recv++;
    ifc_[m.interface_id].delivered++;
  }
}

void PcapngSink::secrets(std::string_view lines) {
  if (!writer_ || lines.empty()) return;
  std::vector<uint8_t> buf(pcapng::dsb_size(lines));
  if (pcapng::encode_dsb(buf, lines) && put_block(buf.data(), buf.size())) stats_.dsbs++;
  if (opt_.rotate_bytes || opt_.rotate_duration_ns) {
    recent_dsb_.emplace_back(lines);
    while (recent_dsb_.size() > opt_.keep_dsb_sessions) recent_dsb_.pop_front();
  }
}

void PcapngSink::set_interface_drops(uint32_t id, uint64_t ifdrop, uint64_t osdrop) {
  if (id < ifc_.size()) {
    ifc_[id].ifdrop = ifdrop;
    ifc_[id].osdrop = osdrop;
  }
}

void PcapngSink::tick(uint64_t now_ns) {
  if (!writer_ || !opt_.rotate_duration_ns) return;
  if (now_ns - file_start_ns_ >= opt_.rotate_duration_ns) {
    std::string e;
    finish_file(&e);
    if (!open_file(now_ns, &e)) error_ = e;
  }
}

bool PcapngSink::close(std::string* err) { return finish_file(err); }

bool PcapngSink::failed() const { return !error_.empty() || (writer_ && writer_->failed()); }

std::string PcapngSink::error() const {
  if (!error_.empty()) return error_;
  return writer_ ? writer_->error() : std::string();
}

}  // namespace ehp
