// SPDX-License-Identifier: BSD-2-Clause
#include "sink/pcapng_sink.h"

#include <poll.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <algorithm>
#include <cstring>

#include "output/pcapng.h"

namespace ehp {

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

std::string hex_of(const std::array<uint8_t, 32>& r) {
  static const char* kHex = "0123456789abcdef";
  std::string out(64, '0');
  for (size_t i = 0; i < 32; ++i) {
    out[2 * i] = kHex[r[i] >> 4];
    out[2 * i + 1] = kHex[r[i] & 15];
  }
  return out;
}

// The client_random of a key log block: the second field of its first line, lowercased.
std::string random_of_keylog(std::string_view lines) {
  auto sp = lines.find(' ');
  if (sp == std::string_view::npos) return {};
  auto end = lines.find_first_of(" \r\n", sp + 1);
  std::string r(lines.substr(sp + 1, end == std::string_view::npos ? std::string_view::npos : end - sp - 1));
  for (auto& c : r) c = char(tolower(uint8_t(c)));
  return r;
}

constexpr std::string_view kCarriedNote = "carried over: TLS session still open when this file started";

// A pipe, FIFO or device (anything but a regular file or a name that does not exist yet).
bool is_stream_path(const std::string& path) {
  struct stat st {};
  if (path == "-") return fstat(STDOUT_FILENO, &st) != 0 || !S_ISREG(st.st_mode);
  if (stat(path.c_str(), &st) != 0) return false;
  return !S_ISREG(st.st_mode);
}

}  // namespace

PcapngSink::PcapngSink(const SinkOptions& o, std::vector<SinkIface> ifaces)
    : opt_(o), ifaces_(std::move(ifaces)), ifc_(ifaces_.size()), if_total_packets_(ifaces_.size()) {}

PcapngSink::~PcapngSink() {
  std::string e;
  if (writer_) close(&e);
}

// The writer's messages name the syscall; a closed reader deserves a plainer sentence.
std::string PcapngSink::describe_error(const std::string& e) const {
  const std::string epipe = strerror(EPIPE);
  if (e.size() >= epipe.size() && e.compare(e.size() - epipe.size(), epipe.size(), epipe) == 0) {
    std::string what = opt_.path == "-" ? "standard output" : opt_.path;
    return "the reader of " + what + " closed it (broken pipe); capture stopped";
  }
  return e;
}

std::unique_ptr<PcapngSink> PcapngSink::open(const SinkOptions& o, std::vector<SinkIface> ifaces,
                                             std::string* err) {
  if ((o.rotate_bytes || o.rotate_duration_ns) && o.path == "-") {
    *err = "-b (ring buffer) cannot be used with -w - (standard output)";
    return nullptr;
  }
  std::unique_ptr<PcapngSink> s(new PcapngSink(o, std::move(ifaces)));
  s->stream_ = is_stream_path(o.path);
  std::lock_guard g(s->mu_);
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
  wo.allow_foreign_stream = opt_.allow_foreign_stream;
  wo.pad_tail = true;  // the file is pcapng: tails go out by O_DIRECT behind a filler block
  if (stream_) wo.flush_interval_ms = kStreamFlushMs;
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
  // A rotated file must stand alone: the keys of recent sessions (a key may precede its
  // ClientHello, which then lands in this file) and of the open sessions carried over, then
  // those sessions' packets so far (see "Rotation" in the header).
  if (file_seq_ > 1) {
    std::unordered_map<std::string_view, bool> written;
    auto put_dsb = [&](std::string_view random_hex, std::string_view lines) {
      if (!random_hex.empty() && !written.emplace(random_hex, true).second) return true;
      buf.resize(pcapng::dsb_size(lines));
      return pcapng::encode_dsb(buf, lines) && put_block(buf.data(), buf.size());
    };
    expire_pending(now_ns);
    for (auto& d : pending_order_) {
      auto it = pending_dsb_.find(d.random_hex);
      if (it != pending_dsb_.end() && !put_dsb(it->first, it->second)) goto fail;
    }
    for (auto& [k, f] : carry_) {
      auto it = dsb_of_carried_.find(f.random_hex);
      if (it != dsb_of_carried_.end() && !it->second.empty() && !put_dsb(it->first, it->second))
        goto fail;
    }
    if (!write_carried(buf)) goto fail;
  }
  file_base_bytes_ = stats_.file_bytes;
  // Ring of N files: remove the oldest beyond N.
  if (opt_.ring_files && files_written_.size() > opt_.ring_files) {
    unlink(files_written_.front().c_str());
    files_written_.erase(files_written_.begin());
  }
  // Hand the header blocks over now: a capture killed in its first seconds still leaves a
  // valid (SHB + IDB) file instead of an empty one.
  writer_->flush();
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
                        .osdrop = ifc_[i].osdrop, .usrdeliv = ifc_[i].delivered,
                        .comment = i < gone_comment_.size() ? std::string_view(gone_comment_[i]) : std::string_view()};
    buf.resize(pcapng::isb_size(isb));
    if (!pcapng::encode_isb(buf, isb) || !put_block(buf.data(), buf.size())) ok = false;
  }
  std::string e;
  if (!writer_->close(&e)) {
    ok = false;
    e = describe_error(e);
    if (err) *err = e;
    error_ = e;
  }
  writer_.reset();
  return ok;
}

// Closes the current file (ISBs) and starts the next one (SHB, IDBs, DSBs of recent sessions).
bool PcapngSink::rotate_locked(uint64_t now_ns) {
  std::string e;
  if (!finish_file(&e)) return false;
  if (!open_file(now_ns, &e)) {
    error_ = e;
    return false;
  }
  return true;
}

void PcapngSink::batch_begin() {
  batch_lock_.lock();
  batch_owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
}

void PcapngSink::batch_end() {
  batch_owner_.store(std::thread::id{}, std::memory_order_relaxed);
  batch_lock_.unlock();
}

void PcapngSink::packet(const correlate::PacketMeta& m, std::span<const uint8_t> frame) {
  std::unique_lock g(mu_, std::defer_lock);
  if (!locked_by_batch()) g.lock();
  if (!writer_ || stop_reached_) return;
  if (opt_.stop_after_bytes && stats_.file_bytes >= opt_.stop_after_bytes) {
    stop_reached_ = true;
    return;
  }
  if (opt_.rotate_bytes && stats_.file_bytes - file_base_bytes_ >= opt_.rotate_bytes &&
      !rotate_locked(std::max(m.ts_ns, wall_clock_ns())))
    return;
  if (!write_epb(m, frame, false)) return;
  stats_.packets++;
  stats_.bytes += frame.size();
  last_ts_ns_ = m.ts_ns;
  if (m.interface_id < ifc_.size()) {
    ifc_[m.interface_id].recv++;
    ifc_[m.interface_id].delivered++;
    if_total_packets_[m.interface_id]++;
  }
  if (rotating()) track_carry(m, frame);
}

bool PcapngSink::write_epb(const correlate::PacketMeta& m, std::span<const uint8_t> frame,
                           bool carried) {
  // Encodes an n-byte block straight into the writer's buffer.
  auto put = [&](size_t n, auto&& encode) {
    uint8_t* p = writer_->reserve(n);
    if (!p) {
      stats_.write_failures++;
      return false;
    }
    encode(p, n);
    writer_->commit(n);
    stats_.file_bytes += n;
    return true;
  };
  if (!carried && !m.proc.known) [[likely]] {  // no comment, no pid: the inline encoder
    return put(pcapng::epb_plain_size(uint32_t(frame.size())), [&](uint8_t* p, size_t) {
      pcapng::encode_epb_plain(p, m.interface_id, m.ts_ns, uint32_t(frame.size()), m.wire_len,
                               m.direction ? 2u : 1u, frame.data());
    });
  }
  char comment[80 + kCarriedNote.size() + 2];
  size_t clen = 0;
  if (carried) {
    memcpy(comment, kCarriedNote.data(), kCarriedNote.size());
    clen = kCarriedNote.size();
    if (m.proc.known) {
      comment[clen++] = ';';
      comment[clen++] = ' ';
    }
  }
  pcapng::EpbInfo epb{};
  epb.interface_id = m.interface_id;
  epb.ts_ns = m.ts_ns;
  epb.caplen = uint32_t(frame.size());
  epb.origlen = m.wire_len;
  epb.flags = m.direction ? 2u : 1u;
  if (m.proc.known) {
    clen += format_process(m.proc.info, comment + clen, sizeof comment - clen);
    epb.has_pid_tid = true;
    epb.pid = m.proc.info.pid;
    epb.tid = m.proc.info.tid;
  }
  if (clen) epb.comment = std::string_view(comment, clen);
  return put(pcapng::epb_size(epb), [&](uint8_t* p, size_t n) {
    pcapng::encode_epb(std::span<uint8_t>(p, n), epb, frame);
  });
}

// Keeps the payload packets of open TLS sessions for the next file. Runs only while rotating.
void PcapngSink::track_carry(const correlate::PacketMeta& m, std::span<const uint8_t> frame) {
  if (m.ts_ns >= carry_expire_at_ns_) {
    expire_carry(m.ts_ns);
    carry_expire_at_ns_ = m.ts_ns + 1'000'000'000ull;
  }
  net::FrameInfo fi;
  if (!net::decode_frame(m.linktype, frame, fi) || fi.l4_proto != 6 /* TCP */ || fi.is_fragment)
    return;
  const auto key = net::flow_key(fi);
  auto it = carry_.find(key);
  std::span<const uint8_t> payload = frame.subspan(fi.l4_payload_offset, fi.l4_payload_len);
  if (it == carry_.end()) {
    if (fi.l4_payload_len == 0 || (fi.tcp_flags & 0x05)) return;  // FIN/RST
    auto hello = net::classify_tls(payload);
    if (hello.type != net::TlsHandshake::ClientHello) return;
    it = carry_.emplace(key, CarriedFlow{}).first;
    it->second.random_hex = hex_of(hello.random);
    // Its DSB normally came just before the ClientHello and waits in pending_dsb_; a later
    // key (hold-back timeout) fills the slot in secrets().
    std::string& slot = dsb_of_carried_[it->second.random_hex];
    auto pend = pending_dsb_.find(it->second.random_hex);
    if (pend != pending_dsb_.end()) {
      slot = std::move(pend->second);
      pending_dsb_.erase(pend);
    }
  }
  CarriedFlow& f = it->second;
  f.last_ts_ns = m.ts_ns;
  auto forget = [&] {
    carry_bytes_ -= f.history.size();
    dsb_of_carried_.erase(f.random_hex);
    carry_.erase(it);
  };
  if (fi.tcp_flags & 0x04) return forget();          // RST: the session is over
  if ((fi.tcp_flags & 0x01) && ++f.fins >= 2) return forget();  // both FINs
  if (fi.l4_payload_len == 0) return;  // pure ACKs are not needed to decrypt
  const size_t need = sizeof(correlate::PacketMeta) + sizeof(uint32_t) + frame.size();
  if (f.history.size() + need > opt_.carry_max_flow_bytes ||
      carry_bytes_ + need > opt_.carry_max_total_bytes) {
    stats_.sessions_not_carried++;
    return forget();
  }
  const size_t at = f.history.size();
  f.history.resize(at + need);
  uint8_t* p = f.history.data() + at;
  memcpy(p, &m, sizeof m);
  const uint32_t len = uint32_t(frame.size());
  memcpy(p + sizeof m, &len, sizeof len);
  memcpy(p + sizeof m + sizeof len, frame.data(), frame.size());
  carry_bytes_ += need;
}

// Drops pending keys that are too old or too many; their sessions, if any, never showed up.
void PcapngSink::expire_pending(uint64_t now_ns) {
  while (!pending_order_.empty() &&
         (pending_order_.size() > opt_.pending_dsb_max ||
          now_ns - std::min(now_ns, pending_order_.front().since_ns) > opt_.pending_dsb_ns)) {
    pending_dsb_.erase(pending_order_.front().random_hex);
    pending_order_.pop_front();
  }
}

void PcapngSink::expire_carry(uint64_t now_ns) {
  for (auto it = carry_.begin(); it != carry_.end();) {
    if (now_ns > it->second.last_ts_ns && now_ns - it->second.last_ts_ns > opt_.carry_idle_ns) {
      carry_bytes_ -= it->second.history.size();
      dsb_of_carried_.erase(it->second.random_hex);
      it = carry_.erase(it);
    } else {
      ++it;
    }
  }
}

// The carried sessions' packets, each session in its original order, oldest session first.
bool PcapngSink::write_carried(std::vector<uint8_t>&) {
  std::vector<const CarriedFlow*> flows;
  for (auto& [k, f] : carry_) flows.push_back(&f);
  auto first_ts = [](const CarriedFlow* f) {
    correlate::PacketMeta m;
    memcpy(&m, f->history.data(), sizeof m);
    return m.ts_ns;
  };
  std::erase_if(flows, [](const CarriedFlow* f) { return f->history.empty(); });
  std::sort(flows.begin(), flows.end(),
            [&](auto* a, auto* b) { return first_ts(a) < first_ts(b); });
  for (auto* f : flows) {
    const uint8_t* p = f->history.data();
    const uint8_t* end = p + f->history.size();
    while (p < end) {
      correlate::PacketMeta m;
      uint32_t len;
      memcpy(&m, p, sizeof m);
      memcpy(&len, p + sizeof m, sizeof len);
      if (!write_epb(m, std::span<const uint8_t>(p + sizeof m + sizeof len, len), true)) return false;
      p += sizeof m + sizeof len + len;
    }
    stats_.sessions_carried++;
  }
  return true;
}

void PcapngSink::secrets(std::string_view lines) {
  std::unique_lock g(mu_, std::defer_lock);
  if (!locked_by_batch()) g.lock();
  if (!writer_ || lines.empty()) return;
  std::vector<uint8_t> buf(pcapng::dsb_size(lines));
  if (pcapng::encode_dsb(buf, lines) && put_block(buf.data(), buf.size())) stats_.dsbs++;
  if (rotating()) {
    std::string random = random_of_keylog(lines);
    auto it = dsb_of_carried_.find(random);
    if (it != dsb_of_carried_.end()) {
      // A key that comes after its session's ClientHello (hold-back timeout) still belongs to it.
      it->second = std::string(lines);
    } else if (!random.empty()) {
      const uint64_t now = wall_clock_ns();
      expire_pending(now);
      if (pending_dsb_.insert_or_assign(random, std::string(lines)).second)
        pending_order_.push_back({std::move(random), now});
    }
  }
}

void PcapngSink::set_interface_drops(uint32_t id, uint64_t ifdrop, uint64_t osdrop) {
  std::lock_guard g(mu_);
  if (id < ifc_.size()) {
    ifc_[id].ifdrop = ifdrop;
    ifc_[id].osdrop = osdrop;
  }
}

void PcapngSink::interface_gone(uint32_t id, const std::string& comment) {
  std::lock_guard g(mu_);
  if (id >= ifc_.size()) return;
  if (gone_comment_.size() < ifc_.size()) gone_comment_.resize(ifc_.size());
  gone_comment_[id] = comment.substr(0, 1024);
  if (!writer_) return;
  const uint64_t now = last_ts_ns_ ? std::max(last_ts_ns_, wall_clock_ns()) : wall_clock_ns();
  pcapng::IsbInfo isb{.interface_id = id, .ts_ns = now, .starttime_ns = file_start_ns_, .endtime_ns = now,
                      .ifrecv = ifc_[id].recv, .ifdrop = ifc_[id].ifdrop, .osdrop = ifc_[id].osdrop,
                      .usrdeliv = ifc_[id].delivered, .comment = gone_comment_[id]};
  std::vector<uint8_t> buf(pcapng::isb_size(isb));
  if (pcapng::encode_isb(buf, isb)) put_block(buf.data(), buf.size());
}

void PcapngSink::tick(uint64_t now_ns) {
  std::lock_guard g(mu_);
  if (!writer_) return;
  // A pipe on stdout whose reader went away reports POLLERR on our end: stop now rather than at
  // the next packet, which may never come on a quiet link.
  if (stream_ && opt_.path == "-" && error_.empty()) {
    pollfd p{STDOUT_FILENO, 0, 0};
    if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) {
      error_ = describe_error(std::string("write stdout: ") + strerror(EPIPE));
      return;
    }
  }
  if (!opt_.rotate_duration_ns) return;
  if (now_ns >= file_start_ns_ && now_ns - file_start_ns_ >= opt_.rotate_duration_ns) rotate_locked(now_ns);
}

bool PcapngSink::close(std::string* err) {
  std::lock_guard g(mu_);
  if (!writer_ && !error_.empty()) {  // a rotation failed earlier: report that
    if (err) *err = error_;
    return false;
  }
  return finish_file(err);
}

bool PcapngSink::stop_reached() const {
  std::lock_guard g(mu_);
  return stop_reached_;
}

bool PcapngSink::failed() const {
  std::lock_guard g(mu_);
  return !error_.empty() || (writer_ && writer_->failed());
}

std::string PcapngSink::error() const {
  std::lock_guard g(mu_);
  if (!error_.empty()) return error_;
  return writer_ ? describe_error(writer_->error()) : std::string();
}

SinkStats PcapngSink::stats() const {
  std::lock_guard g(mu_);
  SinkStats s = stats_;
  s.carried_bytes_now = carry_bytes_;
  s.output_closed = (!error_.empty() && error_.find("broken pipe") != std::string::npos) ||
                    (writer_ && writer_->failed() && writer_->error().find(strerror(EPIPE)) != std::string::npos);
  return s;
}

std::vector<std::string> PcapngSink::files() const {
  std::lock_guard g(mu_);
  return files_written_;
}

uint64_t PcapngSink::interface_packets(uint32_t id) const {
  std::lock_guard g(mu_);
  return id < if_total_packets_.size() ? if_total_packets_[id] : 0;
}

}  // namespace ehp
