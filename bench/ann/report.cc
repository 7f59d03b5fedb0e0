#include "report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <vector>

#include <fmt/format.h>

namespace vexfs::bench {
namespace {

using nlohmann::json;

constexpr double kTargets[] = {0.90, 0.95, 0.99};

// One curve: all points of one (engine, index, build threads) on a data set.
struct Series {
  std::string engine;
  std::string index;
  int threads = 0;
  std::vector<const json*> points;  // in file order = sweep order
};

std::string SeriesKey(const json& p) {
  return fmt::format("{}|{}|{}", p["engine"].get<std::string>(), p["index"].get<std::string>(),
                     p["threads"].get<int>());
}

// Data sets in first-seen order, each with its series in first-seen order.
struct DatasetGroup {
  std::string name;
  const json* first = nullptr;
  std::vector<Series> series;
  int max_threads = 0;
};

std::vector<DatasetGroup> Group(const json& points) {
  std::vector<DatasetGroup> groups;
  for (const json& p : points) {
    const std::string ds = p["dataset"].get<std::string>();
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const DatasetGroup& x) { return x.name == ds; });
    if (g == groups.end()) {
      groups.push_back(DatasetGroup{ds, &p, {}, 0});
      g = groups.end() - 1;
    }
    g->max_threads = std::max(g->max_threads, p["threads"].get<int>());
    const std::string key = SeriesKey(p);
    auto s = std::find_if(g->series.begin(), g->series.end(), [&](const Series& x) {
      return fmt::format("{}|{}|{}", x.engine, x.index, x.threads) == key;
    });
    if (s == g->series.end()) {
      g->series.push_back(Series{p["engine"].get<std::string>(), p["index"].get<std::string>(),
                                 p["threads"].get<int>(), {}});
      s = g->series.end() - 1;
    }
    s->points.push_back(&p);
  }
  return groups;
}

// The fastest point of `s` (by `qps_field`) with recall >= target.
const json* Best(const Series& s, double target, const char* qps_field = "qps") {
  const json* best = nullptr;
  for (const json* p : s.points) {
    if ((*p)["recall_at_10"].get<double>() + 1e-9 < target) continue;
    if (!(*p)[qps_field].is_number()) continue;
    if (!best || (*p)[qps_field].get<double>() > (*best)[qps_field].get<double>()) best = p;
  }
  return best;
}

const Series* Find(const DatasetGroup& g, const std::string& engine, const std::string& index,
                   int threads) {
  for (const Series& s : g.series) {
    if (s.engine == engine && s.index == index && s.threads == threads) return &s;
  }
  return nullptr;
}

std::string ParamText(const json& p) {
  std::string out;
  for (const auto& [k, v] : p["params"].items()) {
    // Constant per series: shown in the titles and the JSON.
    if (k == "M" || k == "ef_construction" || k == "nlist" || k == "kmeans_iter" || k == "train_n") {
      continue;
    }
    out += fmt::format("{}{}={}", out.empty() ? "" : ",", k == "ef_search" ? "ef" : k, v.dump());
  }
  return out.empty() ? "exact" : out;
}

std::string Num(std::optional<double> v, const char* f = "{:.0f}") {
  return v ? fmt::format(fmt::runtime(f), *v) : std::string("—");
}
std::string Ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) return "—";
  return fmt::format("{:.2f}", *a / *b);
}

std::optional<double> BestQps(const Series* s, double target, const char* field = "qps") {
  if (!s) return std::nullopt;
  const json* p = Best(*s, target, field);
  if (!p) return std::nullopt;
  return (*p)[field].get<double>();
}
std::optional<double> Field(const Series* s, const char* name) {
  if (!s || s->points.empty()) return std::nullopt;
  const json& v = (*s->points.front())[name];
  if (!v.is_number()) return std::nullopt;
  return v.get<double>();
}

std::string DatasetTitle(const DatasetGroup& g) {
  const json& p = *g.first;
  size_t nq = 0;  // exact indexes may have used a prefix of the queries
  for (const Series& s : g.series) {
    for (const json* q : s.points) nq = std::max(nq, q->value("nq", size_t{0}));
  }
  return fmt::format("{}: n={}, dim={}, metric={}, {} queries, k={}", g.name, p["n"].get<size_t>(),
                     p["dim"].get<size_t>(), p["metric"].get<std::string>(), nq,
                     p.value("k", size_t{10}));
}

}  // namespace

std::string MarkdownReport(const json& points, const std::string& preamble) {
  std::string md = "# ANN benchmark: VexFS vs hnswlib vs FAISS\n\n";
  if (!preamble.empty()) md += preamble + "\n";
  md +=
      "QPS is single-thread, one query per call, wall clock (best of the timed passes); "
      "\"QPS from thread CPU time\" counts only the time the search thread was on a CPU, which "
      "is steadier on a shared machine. Recall is recall@10 against exact ground truth. "
      "Compare ratios from the same run only.\n\n";
  for (const json& p : points) {
    if (p.value("search_interleaved", false)) {
      md += "Graph indexes were swept interleaved (--interleave): at each ef, every timed pass "
            "of one index is followed by one of each other index, so load from other work "
            "falls on all of them alike.\n\n";
      break;
    }
  }
  for (const DatasetGroup& g : Group(points)) {
    md += fmt::format("## {}\n\n", DatasetTitle(g));
    md += "### Best QPS at recall@10 >= target\n\n";
    md += "Cell: QPS (search parameter, recall). — = target not reached in the sweep.";
    for (const Series& s : g.series) {
      const json& p = *s.points.front();
      if (s.index == "ivf-flat" && p["params"].contains("nlist")) {
        md += fmt::format(" IVF: nlist={}, trained on {} rows, {} k-means iterations.",
                          p["params"]["nlist"].dump(), p["params"].value("train_n", 0),
                          p["params"].value("kmeans_iter", 0));
        break;
      }
    }
    for (const Series& s : g.series) {
      if (s.index.rfind("flat", 0) == 0) {
        md += fmt::format(" Exact (flat) indexes timed on {} queries, one pass.",
                          s.points.front()->value("nq", 0));
        break;
      }
    }
    md += "\n\n";
    md += "| engine | index | build threads | >= 0.90 | >= 0.95 | >= 0.99 | max recall |\n";
    md += "|---|---|---|---|---|---|---|\n";
    for (const Series& s : g.series) {
      md += fmt::format("| {} | {} | {} |", s.engine, s.index, s.threads);
      for (double t : kTargets) {
        const json* p = Best(s, t);
        md += p ? fmt::format(" {:.0f} ({}, {:.3f}) |", (*p)["qps"].get<double>(), ParamText(*p),
                              (*p)["recall_at_10"].get<double>())
                : std::string(" — |");
      }
      double max_recall = 0;
      for (const json* p : s.points) max_recall = std::max(max_recall, (*p)["recall_at_10"].get<double>());
      md += fmt::format(" {:.4f} |\n", max_recall);
    }

    const int T = g.max_threads;
    const Series* ours = Find(g, "vexfs", "hnsw-f32", T);
    const Series* ours16 = Find(g, "vexfs", "hnsw-f16", T);
    const Series* hl = Find(g, "hnswlib", "hnsw-f32", T);
    const Series* fh = Find(g, "faiss", "hnsw-f32", T);
    const Series* ours1 = Find(g, "vexfs", "hnsw-f32", 1);
    const Series* hl1 = Find(g, "hnswlib", "hnsw-f32", 1);
    md += fmt::format(
        "\n### Ratios: VexFS hnsw-f32 vs hnswlib and FAISS IndexHNSWFlat (M=16, "
        "ef_construction=200)\n\n"
        "QPS and build throughput: > 1 means VexFS is faster. Memory: < 1 means VexFS is "
        "smaller.\n\n");
    md += "| quantity | VexFS f32 | VexFS f16 | hnswlib | FAISS HNSW | VexFS/hnswlib | VexFS/FAISS-HNSW |\n";
    md += "|---|---|---|---|---|---|---|\n";
    for (double t : kTargets) {
      auto a = BestQps(ours, t), a16 = BestQps(ours16, t), b = BestQps(hl, t), c = BestQps(fh, t);
      md += fmt::format("| QPS at recall >= {:.2f} | {} | {} | {} | {} | {} | {} |\n", t, Num(a),
                        Num(a16), Num(b), Num(c), Ratio(a, b), Ratio(a, c));
    }
    for (double t : kTargets) {
      const char* f = "qps_cpu";
      auto a = BestQps(ours, t, f), a16 = BestQps(ours16, t, f), b = BestQps(hl, t, f),
           c = BestQps(fh, t, f);
      md += fmt::format("| QPS from thread CPU time at recall >= {:.2f} | {} | {} | {} | {} | {} | {} |\n",
                        t, Num(a), Num(a16), Num(b), Num(c), Ratio(a, b), Ratio(a, c));
    }
    {
      auto a = Field(ours, "build_vectors_per_s"), a16 = Field(ours16, "build_vectors_per_s"),
           b = Field(hl, "build_vectors_per_s"), c = Field(fh, "build_vectors_per_s");
      md += fmt::format("| build vectors/s ({} threads) | {} | {} | {} | {} | {} | {} |\n", T,
                        Num(a), Num(a16), Num(b), Num(c), Ratio(a, b), Ratio(a, c));
    }
    if (T != 1 && (ours1 || hl1)) {
      auto a = Field(ours1, "build_vectors_per_s"), b = Field(hl1, "build_vectors_per_s");
      md += fmt::format("| build vectors/s (1 thread) | {} | — | {} | — | {} | — |\n", Num(a),
                        Num(b), Ratio(a, b));
    }
    {
      auto a = Field(ours, "memory_rss_mb"), a16 = Field(ours16, "memory_rss_mb"),
           b = Field(hl, "memory_rss_mb"), c = Field(fh, "memory_rss_mb");
      md += fmt::format("| memory MB, RSS delta around build | {} | {} | {} | {} | {} | {} |\n",
                        Num(a, "{:.1f}"), Num(a16, "{:.1f}"), Num(b, "{:.1f}"), Num(c, "{:.1f}"),
                        Ratio(a, b), Ratio(a, c));
      a = Field(ours, "memory_engine_mb"), a16 = Field(ours16, "memory_engine_mb"),
      b = Field(hl, "memory_engine_mb"), c = Field(fh, "memory_engine_mb");
      md += fmt::format(
          "| memory MB, accounting (VexFS: MemoryBytes(); others: computed from index sizes) "
          "| {} | {} | {} | {} | {} | {} |\n",
          Num(a, "{:.1f}"), Num(a16, "{:.1f}"), Num(b, "{:.1f}"), Num(c, "{:.1f}"), Ratio(a, b),
          Ratio(a, c));
    }

    if (const Series* ours8 = Find(g, "vexfs", "hnsw-i8", T)) {
      // Issue 4's int8 goal: the int8 index against hnswlib's float32 one.
      auto a = Field(ours8, "memory_engine_mb"), b = Field(hl, "memory_engine_mb");
      md += fmt::format(
          "| memory MB, accounting, VexFS hnsw-i8 (int8 codes) | {} | — | {} | — | {} | — |\n",
          Num(a, "{:.1f}"), Num(b, "{:.1f}"), Ratio(a, b));
    }

    md += "\n### Build and memory\n\n";
    md += "| engine | index | threads | build s | build CPU s | vectors/s | memory MB (accounting, source) | memory MB (RSS delta) |\n";
    md += "|---|---|---|---|---|---|---|---|\n";
    for (const Series& s : g.series) {
      const json& p = *s.points.front();
      md += fmt::format("| {} | {} | {} | {:.2f} | {} | {:.0f} | {} ({}) | {:.1f} |\n", s.engine,
                        s.index, s.threads, p["build_s"].get<double>(),
                        Num(Field(&s, "build_cpu_s"), "{:.2f}"),
                        p["build_vectors_per_s"].get<double>(),
                        Num(Field(&s, "memory_engine_mb"), "{:.1f}"),
                        p.value("memory_engine_source", std::string("none")),
                        p["memory_rss_mb"].get<double>());
    }
    md += "\n";
  }
  return md;
}

std::string GnuplotScript(const json& points, const std::string& png_path) {
  const std::vector<DatasetGroup> groups = Group(points);
  const size_t rows = std::max<size_t>(groups.size(), 1);
  std::string gp;
  gp += fmt::format("set terminal pngcairo size 1100,{} font ',10'\n", 560 * rows);
  gp += fmt::format("set output '{}'\n", png_path);
  gp += "set termoption noenhanced\n";
  // Data blocks first: gnuplot 5 inline data, one per (data set, series).
  std::vector<std::vector<std::string>> blocks(groups.size());
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    for (size_t si = 0; si < groups[gi].series.size(); ++si) {
      const Series& s = groups[gi].series[si];
      if (s.threads != groups[gi].max_threads) continue;  // 1-thread builds: same curves
      const std::string name = fmt::format("$d{}_{}", gi, si);
      gp += name + " << EOD\n";
      for (const json* p : s.points) {
        gp += fmt::format("{:.5f} {:.2f}\n", (*p)["recall_at_10"].get<double>(),
                          (*p)["qps"].get<double>());
      }
      gp += "EOD\n";
      blocks[gi].push_back(fmt::format("{} u (nines($1)):2 w lp lw 2 pt {} ps 1.2 t '{} {}'", name,
                                       s.points.size() == 1 ? 9 : 7, s.engine, s.index));
    }
  }
  gp += fmt::format("set multiplot layout {},1\n", rows);
  gp += "set logscale y\nset grid\nset key outside right top\n";
  gp += "set xlabel 'recall@10 (nines scale; dashed: 0.90 / 0.95 / 0.99)'\nset ylabel 'queries/s (1 thread, log scale)'\n";
  // "Nines" scale: x = -log10(1 - recall), so 0.9, 0.99 and 0.999 are
  // evenly spaced; recall 1 is drawn at 4 (1 - recall clamped to 1e-4).
  gp += "nines(r) = -log10(1.0001 - r)\n";
  gp += "set xrange [0.25:4.1]\n";
  gp += "set xtics ('0.5' nines(0.5), '0.8' nines(0.8), '0.9' nines(0.9), '0.95' nines(0.95), "
        "'0.99' nines(0.99), '0.999' nines(0.999), '1' nines(1.0))\n";
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    gp += fmt::format("set title \"{}\" noenhanced\n", DatasetTitle(groups[gi]));
    for (double t : kTargets) {
      gp += fmt::format("set arrow from nines({0}),graph 0 to nines({0}),graph 1 nohead dt 2 lc 'gray40'\n", t);
    }
    gp += "plot ";
    for (size_t i = 0; i < blocks[gi].size(); ++i) gp += (i ? ", \\\n     " : "") + blocks[gi][i];
    gp += "\nunset arrow\n";
  }
  gp += "unset multiplot\n";
  return gp;
}

}  // namespace vexfs::bench
