#include "vexfs/engine/dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "vexfs/engine/distance.h"
#include "vexfs/engine/flat_index.h"

namespace vexfs::engine {
namespace {

class DatasetTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) {
    std::string p =
        ::testing::TempDir() + "/vexfs_dataset_" + std::to_string(getpid()) + "_" + name;
    paths_.push_back(p);
    return p;
  }
  void WriteBytes(const std::string& path, const std::vector<uint8_t>& b) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  std::vector<uint8_t> ReadBytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  }
  void TearDown() override {
    for (const std::string& p : paths_) std::remove(p.c_str());
  }
  std::vector<std::string> paths_;
};

FloatMatrix SmallFloat(size_t rows, size_t cols) {
  FloatMatrix m{rows, cols, std::vector<float>(rows * cols)};
  for (size_t i = 0; i < m.data.size(); ++i) m.data[i] = float(i) * 0.5f - 3.25f;
  return m;
}

std::vector<uint8_t> NpyBytes(const std::string& dict, const std::vector<uint8_t>& data,
                              uint8_t major = 1) {
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', major, 0};
  if (major == 1) {
    b.push_back(uint8_t(dict.size()));
    b.push_back(uint8_t(dict.size() >> 8));
  } else {
    for (int i = 0; i < 4; ++i) b.push_back(uint8_t(dict.size() >> (8 * i)));
  }
  b.insert(b.end(), dict.begin(), dict.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

TEST_F(DatasetTest, FvecsRoundTrip) {
  FloatMatrix m = SmallFloat(7, 5);
  const std::string p = Path("a.fvecs");
  ASSERT_TRUE(WriteFvecs(p, m).ok());
  EXPECT_EQ(ReadBytes(p).size(), 7u * (4 + 5 * 4));
  auto r = LoadFvecs(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 7u);
  EXPECT_EQ(r->cols, 5u);
  EXPECT_EQ(r->data, m.data);
  auto part = LoadFvecs(p, 3);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->rows, 3u);
  EXPECT_EQ(part->row(2)[4], m.row(2)[4]);
}

TEST_F(DatasetTest, IvecsRoundTrip) {
  Int32Matrix m{3, 4, {1, -2, 3, 4, 5, 6, 7, INT32_MAX, INT32_MIN, 0, 9, 10}};
  const std::string p = Path("a.ivecs");
  ASSERT_TRUE(WriteIvecs(p, m).ok());
  auto r = LoadIvecs(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data, m.data);
  EXPECT_EQ(r->cols, 4u);
}

TEST_F(DatasetTest, BvecsLoad) {
  const std::string p = Path("a.bvecs");
  WriteBytes(p, {3, 0, 0, 0, 0, 128, 255, 3, 0, 0, 0, 1, 2, 3});
  auto r = LoadBvecs(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows, 2u);
  EXPECT_EQ(r->data, (std::vector<float>{0, 128, 255, 1, 2, 3}));
}

TEST_F(DatasetTest, EmptyVecsFileHasNoRows) {
  const std::string p = Path("empty.fvecs");
  WriteBytes(p, {});
  auto r = LoadFvecs(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows, 0u);
}

TEST_F(DatasetTest, VecsGarbage) {
  const std::string p = Path("bad.fvecs");
  WriteBytes(p, {2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7});  // row truncated
  EXPECT_TRUE(LoadFvecs(p).status().IsCorruption());
  WriteBytes(p, {2, 0, 0});  // header truncated
  EXPECT_TRUE(LoadFvecs(p).status().IsCorruption());
  WriteBytes(p, {0, 0, 0, 0});  // zero dimension
  EXPECT_TRUE(LoadFvecs(p).status().IsCorruption());
  WriteBytes(p, {0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4});  // negative dimension
  EXPECT_TRUE(LoadFvecs(p).status().IsCorruption());
  WriteBytes(p, {1, 0, 0, 0, 1, 2, 3, 4, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8});  // ragged
  EXPECT_TRUE(LoadFvecs(p).status().IsCorruption());
  WriteBytes(p, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'});
  EXPECT_TRUE(LoadIvecs(p).status().IsCorruption());
}

TEST_F(DatasetTest, MissingFile) {
  EXPECT_EQ(LoadFvecs("/nonexistent/dir/x.fvecs").status().err(), ENOENT);
  EXPECT_EQ(LoadNpy("/nonexistent/dir/x.npy").status().err(), ENOENT);
  EXPECT_NE(WriteFvecs("/nonexistent/dir/x.fvecs", SmallFloat(1, 1)).err(), 0);
}

TEST_F(DatasetTest, WriteRejectsBadMatrix) {
  FloatMatrix m{2, 0, {}};
  EXPECT_EQ(WriteFvecs(Path("z.fvecs"), m).err(), EINVAL);
  FloatMatrix bad{2, 3, std::vector<float>(5)};
  EXPECT_EQ(WriteFvecs(Path("z2.fvecs"), bad).err(), EINVAL);
  EXPECT_EQ(WriteNpy(Path("z.npy"), bad).err(), EINVAL);
}

TEST_F(DatasetTest, NpyFloatRoundTrip) {
  FloatMatrix m = SmallFloat(9, 3);
  const std::string p = Path("a.npy");
  ASSERT_TRUE(WriteNpy(p, m).ok());
  std::vector<uint8_t> raw = ReadBytes(p);
  const size_t header_end = 10 + (raw[8] | (raw[9] << 8));
  EXPECT_EQ(header_end % 64, 0u);
  EXPECT_EQ(raw[header_end - 1], '\n');
  auto r = LoadNpyFloat(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 9u);
  EXPECT_EQ(r->cols, 3u);
  EXPECT_EQ(r->data, m.data);
}

TEST_F(DatasetTest, NpyInt32RoundTrip) {
  Int32Matrix m{2, 2, {1, -7, 100000, INT32_MIN}};
  const std::string p = Path("i.npy");
  ASSERT_TRUE(WriteNpy(p, m).ok());
  auto a = LoadNpy(p);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->type, NpyType::kInt32);
  auto r = NpyToInt32(*a);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data, m.data);
}

TEST_F(DatasetTest, NpyDtypesAndVersions) {
  const std::string d2 = "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 2), }\n";
  auto a = ParseNpy(NpyBytes(d2, {0x80, 0x7F, 0x00, 0xFF}));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto f = NpyToFloat(*a);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->data, (std::vector<float>{-128, 127, 0, -1}));

  const std::string u1 = "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }";
  a = ParseNpy(NpyBytes(u1, {0, 200, 255}, 2));  // version 2 header
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  f = NpyToFloat(*a);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->rows, 1u);  // 1-D loads as one row
  EXPECT_EQ(f->data, (std::vector<float>{0, 200, 255}));

  const std::string f2 = "{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (1, 2)}";
  a = ParseNpy(NpyBytes(f2, {0x00, 0x3C, 0x00, 0xC0}, 3));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  f = NpyToFloat(*a);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->data, (std::vector<float>{1.0f, -2.0f}));

  const std::string empty = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 8), }";
  a = ParseNpy(NpyBytes(empty, {}));
  ASSERT_TRUE(a.ok());
  f = NpyToFloat(*a);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->rows, 0u);
  EXPECT_EQ(f->cols, 8u);

  a = ParseNpy(NpyBytes(f2, {0x00, 0x3E, 0, 0}));  // 1.5 is not an int32
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(NpyToInt32(*a).status().err(), EINVAL);
}

TEST_F(DatasetTest, NpyGarbage) {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }";
  std::vector<uint8_t> data(8, 0);
  // Bad magic, truncated preamble, truncated header, wrong data size.
  std::vector<uint8_t> b = NpyBytes(ok, data);
  b[1] = 'X';
  EXPECT_TRUE(ParseNpy(b).status().IsCorruption());
  EXPECT_TRUE(ParseNpy(std::vector<uint8_t>{0x93, 'N', 'U'}).status().IsCorruption());
  b = NpyBytes(ok, data);
  EXPECT_TRUE(ParseNpy(std::span(b.data(), 30)).status().IsCorruption());
  EXPECT_TRUE(ParseNpy(NpyBytes(ok, std::vector<uint8_t>(7))).status().IsCorruption());
  EXPECT_TRUE(ParseNpy(NpyBytes(ok, std::vector<uint8_t>(9))).status().IsCorruption());
  // Malformed dicts.
  EXPECT_TRUE(ParseNpy(NpyBytes("not a dict", data)).status().IsCorruption());
  EXPECT_TRUE(ParseNpy(NpyBytes("{'fortran_order': False, 'shape': (1, 2)}", data))
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(ParseNpy(NpyBytes("{'descr': '<f4, 'fortran_order': False}", data)).status().err() !=
              0);
  EXPECT_TRUE(ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1, 2)}", data))
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, x)}", data))
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2", data))
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                "(99999999999999999999, 2)}",
                                data))
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                "(281474976710655, 281474976710655)}",
                                data))
                  .status()
                  .IsCorruption());
  // Well-formed but unsupported.
  EXPECT_EQ(ParseNpy(NpyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2)}", data))
                .status()
                .err(),
            ENOTSUP);
  EXPECT_EQ(ParseNpy(NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1)}", data))
                .status()
                .err(),
            ENOTSUP);
  EXPECT_EQ(ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2)}", data))
                .status()
                .err(),
            ENOTSUP);
  EXPECT_EQ(ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2)}", data))
                .status()
                .err(),
            ENOTSUP);
  b = NpyBytes(ok, data);
  b[6] = 9;
  EXPECT_EQ(ParseNpy(b).status().err(), ENOTSUP);
  // Random garbage never crashes.
  uint32_t s = 12345;
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<uint8_t> g = NpyBytes(ok, data);
    for (int k = 0; k < 3; ++k) {
      s = s * 1103515245 + 12345;
      g[(s >> 8) % g.size()] = uint8_t(s >> 20);
    }
    auto r = ParseNpy(g);
    if (r.ok()) {
      (void)NpyToFloat(*r);
    }
  }
}

TEST_F(DatasetTest, GeneratorIsDeterministic) {
  SyntheticOptions o;
  o.dim = 24;
  o.num_base = 300;
  o.num_queries = 20;
  o.num_clusters = 8;
  o.intrinsic_dim = 6;
  auto a = GenerateSynthetic(o);
  auto b = GenerateSynthetic(o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->base.data, b->base.data);
  EXPECT_EQ(a->queries.data, b->queries.data);
  EXPECT_EQ(a->base.rows, 300u);
  EXPECT_EQ(a->queries.rows, 20u);
  // Base rows do not depend on the number of queries.
  o.num_queries = 5;
  auto c = GenerateSynthetic(o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->base.data, a->base.data);
  o.seed = 7;
  auto d = GenerateSynthetic(o);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->base.data, a->base.data);
  for (float x : a->base.data) ASSERT_TRUE(std::isfinite(x));
}

TEST_F(DatasetTest, GeneratorNormalizeAndStructure) {
  SyntheticOptions o;
  o.dim = 64;
  o.num_base = 2000;
  o.num_queries = 10;
  o.num_clusters = 16;
  o.intrinsic_dim = 8;
  o.normalize = true;
  auto ds = GenerateSynthetic(o);
  ASSERT_TRUE(ds.ok());
  for (size_t i = 0; i < ds->base.rows; ++i) {
    double n = 0;
    for (float x : ds->base.row(i)) n += double(x) * x;
    ASSERT_NEAR(n, 1.0, 1e-5);
  }
  // Low intrinsic dimension: variance concentrates in few directions, so the
  // mean squared distance to the nearest neighbour is far below the mean
  // squared distance between random pairs.
  auto gt = ComputeGroundTruth(ds->base, ds->queries, 2, Metric::kL2, 2);
  ASSERT_TRUE(gt.ok());
  double nn = 0, rnd = 0;
  const DistanceKernels& k = Kernels();
  for (size_t q = 0; q < ds->queries.rows; ++q) {
    nn += gt->distances[q * 2];
    rnd += k.l2_f32(ds->queries.row(q).data(), ds->base.row(q * 37).data(), o.dim);
  }
  EXPECT_LT(nn * 4, rnd);
}

TEST_F(DatasetTest, GeneratorRejectsBadOptions) {
  SyntheticOptions o;
  o.intrinsic_dim = o.dim + 1;
  EXPECT_EQ(GenerateSynthetic(o).status().err(), EINVAL);
  o = SyntheticOptions();
  o.num_base = 0;
  EXPECT_EQ(GenerateSynthetic(o).status().err(), EINVAL);
  o = SyntheticOptions();
  o.spectrum_decay = 0;
  EXPECT_EQ(GenerateSynthetic(o).status().err(), EINVAL);
  o = SyntheticOptions();
  o.noise = -1;
  EXPECT_EQ(GenerateSynthetic(o).status().err(), EINVAL);
}

TEST_F(DatasetTest, GroundTruthMatchesBruteForce) {
  SyntheticOptions o;
  o.dim = 16;
  o.num_base = 700;
  o.num_queries = 40;
  o.num_clusters = 10;
  o.intrinsic_dim = 4;
  auto ds = GenerateSynthetic(o);
  ASSERT_TRUE(ds.ok());
  for (Metric m : {Metric::kL2, Metric::kInnerProduct}) {
    auto gt = ComputeGroundTruth(ds->base, ds->queries, 5, m, 2);
    ASSERT_TRUE(gt.ok());
    ASSERT_EQ(gt->ids.size(), 40u * 5);
    for (size_t q = 0; q < 40; ++q) {
      const float* qv = ds->queries.row(q).data();
      // Best by direct scan.
      size_t best = 0;
      float bd = INFINITY;
      for (size_t i = 0; i < ds->base.rows; ++i) {
        const float dd = MetricDistance(m, qv, ds->base.row(i).data(), o.dim);
        if (dd < bd) {
          bd = dd;
          best = i;
        }
      }
      EXPECT_EQ(gt->ids[q * 5], best);
      for (size_t j = 1; j < 5; ++j)
        EXPECT_LE(gt->distances[q * 5 + j - 1], gt->distances[q * 5 + j]);
    }
    // Recall of the truth against itself is 1.
    std::vector<std::vector<Neighbor>> self(40);
    for (size_t q = 0; q < 40; ++q) {
      for (size_t j = 0; j < 5; ++j) self[q].push_back({gt->ids[q * 5 + j], 0});
    }
    EXPECT_DOUBLE_EQ(RecallAtK(*gt, self), 1.0);
    self[0].clear();
    EXPECT_NEAR(RecallAtK(*gt, self), 39.0 / 40, 1e-12);
  }
  EXPECT_EQ(ComputeGroundTruth(ds->base, ds->queries, 0, Metric::kL2).status().err(), EINVAL);
  EXPECT_EQ(ComputeGroundTruth(ds->base, ds->queries, 701, Metric::kL2).status().err(), EINVAL);
  FloatMatrix wrong{1, 3, {1, 2, 3}};
  EXPECT_EQ(ComputeGroundTruth(ds->base, wrong, 1, Metric::kL2).status().err(), EINVAL);
}

TEST_F(DatasetTest, GroundTruthIvecsRoundTrip) {
  SyntheticOptions o;
  o.dim = 8;
  o.num_base = 100;
  o.num_queries = 3;
  o.num_clusters = 4;
  o.intrinsic_dim = 3;
  auto ds = GenerateSynthetic(o);
  ASSERT_TRUE(ds.ok());
  auto gt = ComputeGroundTruth(ds->base, ds->queries, 4, Metric::kL2);
  ASSERT_TRUE(gt.ok());
  Int32Matrix m{3, 4, {}};
  for (uint64_t id : gt->ids) m.data.push_back(static_cast<int32_t>(id));
  const std::string p = Path("gt.ivecs");
  ASSERT_TRUE(WriteIvecs(p, m).ok());
  auto back = LoadIvecs(p);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->data, m.data);
  const std::string fp = Path("base.fvecs");
  ASSERT_TRUE(WriteFvecs(fp, ds->base).ok());
  auto base = LoadFvecs(fp);
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->data, ds->base.data);
}

}  // namespace
}  // namespace vexfs::engine
