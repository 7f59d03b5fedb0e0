// Turns the benchmark's JSON points into the markdown summary and a gnuplot
// script for the recall-vs-QPS plot. Pure functions over the JSON array the
// benchmark writes (see README.md for the point schema), so a report can be
// regenerated from a saved JSON file (--report-only).
#ifndef VEXFS_BENCH_ANN_REPORT_H_
#define VEXFS_BENCH_ANN_REPORT_H_

#include <string>

#include <nlohmann/json.hpp>

namespace vexfs::bench {

// `points`: the JSON array; `preamble`: markdown placed under the title
// (machine, engine builds), may be empty.
std::string MarkdownReport(const nlohmann::json& points, const std::string& preamble);

// A self-contained gnuplot script (data inline) drawing one recall@10 vs
// QPS panel per data set into `png_path`.
std::string GnuplotScript(const nlohmann::json& points, const std::string& png_path);

}  // namespace vexfs::bench

#endif  // VEXFS_BENCH_ANN_REPORT_H_
