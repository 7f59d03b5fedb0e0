// vexctl: inspect a VexFS volume (see man/vexctl.8).
#include <fmt/core.h>

#include "vexctl.h"

namespace vexctl {

bool OpenVolume(const std::string& path, Volume* out) {
  vexfs::OpenOptions oo;
  oo.read_only = true;
  oo.exclusive = false;  // inspection works on a mounted volume too
  auto dev = vexfs::OpenBlockDevice(path, oo);
  if (!dev.ok()) {
    fmt::print(stderr, "vexctl: {}\n", dev.status().message());
    return false;
  }
  auto r = vexfs::offline::VolumeReader::Open(dev->get());
  if (!r.ok()) {
    fmt::print(stderr, "vexctl: {}: not a usable VexFS volume: {}\n", path, r.status().message());
    return false;
  }
  out->dev = std::move(dev).value();
  out->reader = std::move(r).value();
  return true;
}

}  // namespace vexctl

int main(int argc, char** argv) {
  CLI::App app{"Inspect a VexFS volume", "vexctl"};
  app.require_subcommand(1);
  std::function<int()> run;
  vexctl::AddInfoCommands(app, &run);
  vexctl::AddDumpCommands(app, &run);
  vexctl::AddVectorCommands(app, &run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return run ? run() : 1;
}
