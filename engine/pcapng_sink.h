// The pcapng output of the engine: turns the correlator's ordered stream (packets and key
// log text) into SHB/IDB/DSB/EPB/ISB blocks handed to the io_uring writer, and rotates files
// (-b) so that each file stands alone: its own SHB and IDBs, the DSBs of recent sessions, an ISB.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "correlate/holdback.h"
#include "output/uring_writer.h"

namespace ehp {

struct SinkIface {
  std::string name;
  std::string description;
  uint16_t linktype = 1;
};

struct SinkOptions {
  std::string path;  // "-" = stdout
  std::string filter;
  uint32_t snaplen = 262144;
  bool direct_io = true;
  uint64_t rotate_bytes = 0;        // -b filesize (0 = off)
  uint64_t rotate_duration_ns = 0;  // -b duration (0 = off)
  uint32_t ring_files = 0;          // -b files (0 = keep all)
  size_t keep_dsb_sessions = 4096;  // DSBs repeated at the top of each rotated file
};

struct SinkStats {
  uint64_t packets = 0, bytes = 0, dsbs = 0, files = 0, write_failures = 0;
  uint64_t file_bytes = 0;  // bytes in the current file
};

class PcapngSink final : public correlate::Sink {
 public:
  static std::unique_ptr<PcapngSink> open(const SinkOptions&, std::vector<SinkIface> ifaces,
                                          std::string* err);
  ~PcapngSink() override;

  void packet(const correlate::PacketMeta&, std::span<const uint8_t> frame) override;
  void secrets(std::string_view keylog_lines) override;

  // Per-interface counters for the closing ISBs.
  void set_interface_drops(uint32_t interface_id, uint64_t ifdrop, uint64_t osdrop);
  // Rotation by time is checked here (called from the serial stage's tick).
  void tick(uint64_t now_ns);
  // Writes the ISBs, drains and closes the current file. Returns false with *err on I/O failure.
  bool close(std::string* err);

  bool failed() const;
  std::string error() const;
  SinkStats stats() const { return stats_; }
  std::vector<std::string> files() const { return files_written_; }

 private:
  PcapngSink(const SinkOptions&, std::vector<SinkIface>);
  bool open_file(uint64_t now_ns, std::string* err);
  bool finish_file(std::string* err);
  std::string next_name(uint64_t now_ns);
  bool put_block(const void* src, size_t n);

  SinkOptions opt_;
  std::vector<SinkIface> ifaces_;
  std::unique_ptr<output::Writer> writer_;
  struct IfCounters { uint64_t recv = 0, delivered = 0, ifdrop = 0, osdrop = 0; };
  std::vector<IfCounters> ifc_;
  std::deque<std::string> recent_dsb_;
  std::vector<std::string> files_written_;
  uint64_t file_start_ns_ = 0;
  uint64_t last_ts_ns_ = 0;
  uint32_t file_seq_ = 0;
  SinkStats stats_;
  std::string error_;
};

uint64_t wall_clock_ns();

}  // namespace ehp
