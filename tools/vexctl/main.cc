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
  CLI::App app{"Inspect a VexFS volume; manage collections and vectors on a mounted one", "vexctl"};
  app.require_subcommand(1);
  app.failure_message([](const CLI::App* a, const CLI::Error& e) {
    return fmt::format("vexctl: {}\nRun with --help for more information.\n", e.what());
  });
  std::function<int()> run;
  vexctl::AddInfoCommands(app, &run);
  vexctl::AddDumpCommands(app, &run);
  vexctl::AddVectorCommands(app, &run);
  vexctl::AddCollectionCommands(app, &run);
  vexctl::AddImportCommand(app, &run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return run ? run() : 1;
}
