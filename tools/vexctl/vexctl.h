// vexctl: inspection tool. One file per subcommand group; main.cc wires
// them into CLI11. The image commands open the volume read-only and shared
// (sample and offline put need it unmounted); collection, import and the
// one-path forms of put and search work on a mounted volume.
#ifndef VEXFS_TOOLS_VEXCTL_VEXCTL_H_
#define VEXFS_TOOLS_VEXCTL_VEXCTL_H_

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>

#include "core/reader.h"
#include "vexfs/block_device.h"

namespace vexctl {

namespace offline = vexfs::offline;

// An opened volume: the device and a reader over it.
struct Volume {
  std::unique_ptr<vexfs::BlockDevice> dev;
  std::unique_ptr<vexfs::offline::VolumeReader> reader;
};
// Prints a message and returns nullptr-holding Volume on failure.
bool OpenVolume(const std::string& path, Volume* out);

// Each group adds its subcommands to `app`; `run` is set to the action of
// the selected one, returning the process exit code.
void AddInfoCommands(CLI::App& app, std::function<int()>* run);
void AddDumpCommands(CLI::App& app, std::function<int()>* run);
void AddVectorCommands(CLI::App& app, std::function<int()>* run);
// Mounted volumes only (ioctls; see mounted.h).
void AddCollectionCommands(CLI::App& app, std::function<int()>* run);
void AddImportCommand(CLI::App& app, std::function<int()>* run);

}  // namespace vexctl

#endif  // VEXFS_TOOLS_VEXCTL_VEXCTL_H_
