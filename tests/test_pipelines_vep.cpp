// `vep` on the golden model: the LLR against two independent `score` runs of the written-out
// windows, the efficient sweep against the naive method, every status, sorting errors, the
// output read back by htslib and bcftools, and the shared variant files end to end.
#include <catch2/catch.hpp>

#include <htslib/faidx.h>
#include <htslib/kstring.h>
#include <htslib/hts.h>
#include <htslib/vcf.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "io/error.h"
#include "io/fasta_index.h"
#include "io/h5.h"
#include "io/sequence_reader.h"
#include "model/checkpoint.h"
#include "pipelines/score.h"
#include "pipelines/vep.h"
#include "test_io_util.h"
#include "tests/test_paths.h"

using namespace mambadna;
using mambadna::test::TempDir;

namespace {
const std::string kGolden = mambadna::test::shared_dir() + "/golden/";

model::Mamba<float> golden_model() {
  auto ck = model::load_checkpoint(kGolden + "tiny.h5");
  return model::Mamba<float>(ck.config, std::move(ck.params));
}

// Two contigs of random bases with a soft-masked stretch and an N run; c1 is 3000 bp, c2 700 bp.
std::map<std::string, std::string> make_reference(const TempDir& dir, std::string& path) {
  std::mt19937 rng(7);
  auto random_bases = [&](size_t n) {
    std::string s(n, 'A');
    for (auto& c : s) c = "ACGT"[rng() % 4];
    return s;
  };
  std::map<std::string, std::string> ref{{"c1", random_bases(3000)}, {"c2", random_bases(700)}};
  for (size_t i = 1200; i < 1300; ++i) ref["c1"][i] = char(std::tolower(ref["c1"][i]));
  for (size_t i = 2000; i < 2040; ++i) ref["c1"][i] = 'N';
  std::string text;
  for (auto& [name, seq] : ref) {
    text += ">" + name + "\n";
    for (size_t i = 0; i < seq.size(); i += 60) text += seq.substr(i, 60) + "\n";
  }
  path = dir.write("ref.fa", text);
  REQUIRE(fai_build(path.c_str()) == 0);
  return ref;
}

std::string vcf_text(const std::vector<std::string>& lines) {
  std::string t =
      "##fileformat=VCFv4.2\n##contig=<ID=c1,length=3000>\n##contig=<ID=c2,length=700>\n"
      "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
  for (auto& l : lines) t += l + "\n";
  return t;
}

// "c1 1001 A G,T" -> a VCF line.
std::string line(const std::string& contig, int64_t pos1, const std::string& ref, const std::string& alt) {
  return contig + "\t" + std::to_string(pos1) + "\t.\t" + ref + "\t" + alt + "\t.\t.\t.";
}

pipelines::VepOptions options(const TempDir& dir, const std::string& fasta, const std::string& vcf, int64_t W) {
  pipelines::VepOptions o;
  o.input = vcf;
  o.reference = fasta;
  o.output = dir.file("out.vcf.gz");
  o.h5_output = dir.file("out.h5");
  o.window = W;
  o.tok.case_mode = io::CaseMode::keep;  // the golden checkpoint's tokenizer
  o.streams = 3;
  o.chunk = 100;  // several chunks per window
  return o;
}

struct Table {
  std::vector<std::string> chrom, alt, status;
  std::vector<int64_t> pos;
  std::vector<double> llr, fwd, rc;
};
Table read_table(const std::string& path) {
  auto f = io::H5File::open_read(path);
  CHECK(f.attr_str("/", "format") == "mambadna-vep/1");
  CHECK(f.attr_str("/", "case") == "keep");  // the golden model's tokenizer (options())
  return Table{f.read_strings("chrom"), f.read_strings("alt"),   f.read_strings("status"), f.read_i64("pos"),
               f.read_f64("llr"),       f.read_f64("llr_fwd"), f.read_f64("llr_rc")};
}

// Records of a VCF/BCF read back with htslib; `info_ok` is set when the header has every INFO line.
// A VCF/BCF file read back with htslib: its header, and each record with its INFO unpacked.
struct ReadBack {
  htsFile* fp = nullptr;
  bcf_hdr_t* hdr = nullptr;
  explicit ReadBack(const std::string& path) : fp(hts_open(path.c_str(), "r")) {
    REQUIRE(fp != nullptr);
    hdr = bcf_hdr_read(fp);
    REQUIRE(hdr != nullptr);
  }
  ~ReadBack() {
    if (hdr) bcf_hdr_destroy(hdr);
    if (fp) hts_close(fp);
  }
  ReadBack(const ReadBack&) = delete;
  ReadBack& operator=(const ReadBack&) = delete;
  std::string header_text() const {
    kstring_t text = KS_INITIALIZE;
    REQUIRE(bcf_hdr_format(hdr, 0, &text) == 0);
    std::string t(text.s, text.l);
    ks_free(&text);
    return t;
  }
  // Calls use(record, index) for every record; returns how many there were.
  template <typename F>
  int64_t each(F&& use) {
    bcf1_t* rec = bcf_init();
    int64_t n = 0;
    while (bcf_read(fp, hdr, rec) == 0) {
      bcf_unpack(rec, BCF_UN_INFO);
      use(rec, n++);
    }
    bcf_destroy(rec);
    return n;
  }
};

int64_t count_records(const std::string& path, bool* info_ok = nullptr, int64_t* with_status = nullptr) {
  ReadBack in(path);
  if (info_ok) {
    *info_ok = true;
    for (const char* id : {"MAMBADNA_LLR", "MAMBADNA_LLR_FWD", "MAMBADNA_LLR_RC", "MAMBADNA_STATUS"})
      *info_ok &= bcf_hdr_idinfo_exists(in.hdr, BCF_HL_INFO, bcf_hdr_id2int(in.hdr, BCF_DT_ID, id)) != 0;
  }
  int64_t ws = 0;
  const int64_t n = in.each([&](bcf1_t* rec, int64_t) { ws += bcf_get_info(in.hdr, rec, "MAMBADNA_STATUS") != nullptr; });
  if (with_status) *with_status = ws;
  return n;
}
}  // namespace

TEST_CASE("vep: the LLR is the difference of two score runs on the written-out windows", "[vep]") {
  TempDir dir;
  auto m = golden_model();
  std::string fasta;
  auto ref = make_reference(dir, fasta);
  const int64_t W = 256;
  // edge: the strand on which an insertion's ALT window cannot hold the whole allele (status
  // contig_end when that strand is scored): the reverse strand at the contig's start, the
  // forward one at its end. A deletion there has nothing to read on: its shorter ALT window is
  // compared with as many of the reference window's first bases (in reading order).
  enum Edge { none, rc_edge, fwd_edge };
  struct Case {
    const char* what;
    int64_t pos;  // 0-based
    int64_t ref_len;
    std::string alt;
    Edge edge;
  };
  const std::vector<Case> cases = {
      {"insertion at the contig start", 0, 1, "+ACGTTG", rc_edge},
      {"SNV at the contig start", 3, 1, "X", none}, {"deletion near the contig start", 9, 5, "-", none},
      {"MNV", 1250, 3, "XXX", none}, {"SNV", 1500, 1, "X", none}, {"insertion", 1700, 1, "+ACGTTG", none},
      {"deletion", 2500, 4, "-", none}, {"deletion near the contig end", 2900, 6, "-", none},
      {"insertion at the contig end", 2999, 1, "+ACGTTG", fwd_edge}};
  int64_t edges = 0;
  for (auto& c : cases) edges += c.edge != none;
  std::vector<std::string> lines;
  std::vector<std::string> alts;
  for (auto& c : cases) {
    const std::string r = ref["c1"].substr(size_t(c.pos), size_t(c.ref_len));
    std::string a;
    if (c.alt[0] == 'X')  // substitute every base
      for (char b : r) a += std::toupper(b) == 'A' ? 'C' : 'A';
    else if (c.alt[0] == '+')
      a = r + c.alt.substr(1);
    else
      a = r.substr(0, 1);
    lines.push_back(line("c1", c.pos + 1, r, a));
    // In the ALT window each allele base takes the case of the reference base it stands on
    // (VCF alleles are case-blind; the MNV lies in soft-masked bases).
    for (char& x : a) x = char(std::islower(uint8_t(r[0])) ? std::tolower(x) : std::toupper(x));
    alts.push_back(a);
  }
  auto o = options(dir, fasta, dir.write("in.vcf", vcf_text(lines)), W);
  auto sum = pipelines::vep(m, o);
  CHECK(sum.scored() == int64_t(cases.size()) - edges);
  CHECK(sum.by_status[size_t(pipelines::VepStatus::contig_end)] == edges);
  auto t = read_table(o.h5_output);
  REQUIRE(t.llr.size() == cases.size());
  std::vector<double> fwd_expected(cases.size());

  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].what);
    const auto& c = cases[i];
    int64_t s = 0, e = 0;
    pipelines::vep_window(c.pos, int64_t(ref["c1"].size()), W, s, e);
    CHECK(s % (W / 4) == 0);
    CHECK(s <= c.pos);
    CHECK(c.pos + c.ref_len <= e);
    const std::string& g = ref["c1"];
    const std::string xw = g.substr(size_t(s), size_t(e - s));
    // The ALT windows read as many bases as the reference window: an insertion's fewer
    // reference bases after it (forward: on the right; reverse strand: on the left), a
    // deletion's more.
    const int64_t change = int64_t(alts[i].size()) - c.ref_len, after = c.pos + c.ref_len;
    // (At a contig end a deletion's window cannot read on, and an insertion's loses its
    // last bases read: the forward strand's rightmost, the reverse strand's leftmost.)
    const int64_t e_f = std::clamp(e - change, after, int64_t(g.size()));
    const int64_t s_r = std::clamp(s + change, int64_t(0), c.pos);
    std::string yf = g.substr(size_t(s), size_t(c.pos - s)) + alts[i] + g.substr(size_t(after), size_t(e_f - after));
    std::string yr = g.substr(size_t(s_r), size_t(c.pos - s_r)) + alts[i] + g.substr(size_t(after), size_t(e - after));
    if (yf.size() > xw.size()) yf.resize(xw.size());
    if (yr.size() > xw.size()) yr = yr.substr(yr.size() - xw.size());
    if (e - change <= int64_t(g.size())) CHECK(yf.size() == xw.size());  // else the contig ends first
    if (s + change >= 0) CHECK(yr.size() == xw.size());
    // The reference windows as long as the ALT ones: the forward strand reads from s, the
    // reverse one from e.
    const std::string xf = xw.substr(0, std::min(xw.size(), yf.size()));
    const std::string xr = xw.substr(xw.size() - std::min(xw.size(), yr.size()));
    const std::string fa = dir.write("w" + std::to_string(i) + ".fa",
                                     ">ref\n" + xw + "\n>alt_f\n" + yf + "\n>alt_r\n" + yr +
                                         "\n>ref_f\n" + xf + "\n>ref_r\n" + xr + "\n");
    REQUIRE(fai_build(fa.c_str()) == 0);
    auto score_of = [&](const std::string& contig) {
      pipelines::ScoreOptions so;
      so.inputs = {fa};
      so.reader.tok.case_mode = io::CaseMode::keep;
      so.reader.regions = {io::Region{contig, 0, io::kContigEnd, {}}};
      so.both_strands = true;
      so.chunk = 64;
      auto r = pipelines::score(m, so, {});
      REQUIRE(r.size() == 1);
      return r[0];
    };
    const auto rx = score_of("ref"), ryf = score_of("alt_f"), ryr = score_of("alt_r");
    const auto rxf = score_of("ref_f"), rxr = score_of("ref_r");
    if (xf.size() < xw.size() || xr.size() < xw.size())  // a deletion at a contig end
      CHECK((rxf.loglik != rx.loglik || rxr.loglik_rc != rx.loglik_rc));
    fwd_expected[i] = ryf.loglik - rxf.loglik;
    CHECK(t.pos[i] == c.pos + 1);
    if (c.edge != none) {  // not scored: the windows would differ in length or lose the allele
      CHECK(t.status[i] == "contig_end");
      CHECK(std::isnan(t.llr[i]));
      continue;
    }
    CHECK(t.status[i] == "ok");
    CHECK(std::fabs(t.fwd[i] - (ryf.loglik - rxf.loglik)) < 1e-4);
    CHECK(std::fabs(t.rc[i] - (ryr.loglik_rc - rxr.loglik_rc)) < 1e-4);
    CHECK(std::fabs(t.llr[i] - 0.5 * (t.fwd[i] + t.rc[i])) < 1e-6);
  }

  // --strand fwd reports the forward LLR alone; a reverse-strand edge does not matter there.
  o.both_strands = false;
  pipelines::vep(m, o);
  auto f = read_table(o.h5_output);
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].what);
    CHECK(f.status[i] == (cases[i].edge == fwd_edge ? "contig_end" : "ok"));
    if (cases[i].edge != fwd_edge) CHECK(std::fabs(f.llr[i] - fwd_expected[i]) < 1e-4);
    CHECK(std::isnan(f.rc[i]));
  }
}

TEST_CASE("vep: the one-sweep method equals the naive one", "[vep]") {
  TempDir dir;
  auto m = golden_model();
  std::string fasta;
  auto ref = make_reference(dir, fasta);
  auto base = [&](const char* c, int64_t p, int64_t n = 1) { return ref[c].substr(size_t(p - 1), size_t(n)); };
  auto other = [](const std::string& b) { return std::string(std::toupper(b[0]) == 'G' ? "T" : "G"); };
  std::vector<std::string> lines;
  // Dense sites sharing windows (W 128: grid 32), multi-allelic, indels, near both ends, in the
  // soft-masked stretch and beside the N run.
  for (int64_t p : {1, 2, 40, 41, 47, 60, 61, 62, 100, 1210, 1215, 1990, 2045, 2046, 2990, 3000}) {
    const std::string r = base("c1", p);
    std::string a = other(r) + "," + (std::toupper(r[0]) == 'C' ? "A" : "C");
    if (p == 41) a += "," + r + "TTA";
    lines.push_back(line("c1", p, r, a));
    if (p == 47 || p == 1215) lines.push_back(line("c1", p, base("c1", p, 4), r));
  }
  for (int64_t p : {5, 350, 351, 699}) lines.push_back(line("c2", p, base("c2", p), other(base("c2", p))));
  const std::string vcf = dir.write("in.vcf", vcf_text(lines));
  // streams 3: one window's two strands at a time; streams 8: four windows' reference sweeps
  // side by side (and several windows pending before they are scored).
  for (const auto& [W, streams] : {std::pair<int64_t, int64_t>{128, 3}, {256, 3}, {128, 8}}) {
    INFO("W " << W << " streams " << streams);
    auto o = options(dir, fasta, vcf, W);
    o.streams = streams;
    auto s1 = pipelines::vep(m, o);
    auto fast = read_table(o.h5_output);
    o.naive = true;
    o.streams = 2;
    auto s2 = pipelines::vep(m, o);
    auto slow = read_table(o.h5_output);
    CHECK(s1.scored() == s2.scored());
    CHECK(s1.scored() > 35);
    REQUIRE(fast.llr.size() == slow.llr.size());
    double worst = 0;
    for (size_t i = 0; i < fast.llr.size(); ++i) {
      CHECK(fast.status[i] == slow.status[i]);
      CHECK(fast.status[i] == "ok");  // the deletion at 47 too (W 128: read on the reverse strand, it meets the contig start)
      worst = std::max({worst, std::fabs(fast.fwd[i] - slow.fwd[i]), std::fabs(fast.rc[i] - slow.rc[i])});
    }
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("vep: every hard case gets its status and stays in the output", "[vep]") {
  TempDir dir;
  auto m = golden_model();
  std::string fasta;
  auto ref = make_reference(dir, fasta);
  const std::string b = ref["c1"].substr(499, 1);
  const std::string n2010 = ref["c1"].substr(2009, 1);
  const std::string mis = std::toupper(b[0]) == 'A' ? "C" : "A";
  const std::string mis600 = std::toupper(ref["c1"][599]) == 'A' ? "C" : "A";
  const std::vector<std::string> lines = {
      line("c1", 500, b, "<DEL>"),
      line("c1", 500, b, "*," + mis),                // star, and a second ALT that is fine
      line("c1", 501, ref["c1"].substr(500, 1), "G]c2:100]"),
      line("c1", 502, ref["c1"].substr(501, 1), "."),
      line("c1", 600, mis600, "T"),  // REF that does not match
      line("c1", 700, ref["c1"].substr(699, 1), ref["c1"].substr(699, 1) + std::string(40, 'A')),
      line("c1", 2010, n2010, "A"),                  // REF inside the N run: ambiguous
      line("c2", 10, ref["c2"].substr(9, 1), "A"),
      line("c2", 20, ref["c2"].substr(19, 1), ref["c2"].substr(19, 1) + "XYZ"),  // not bases
      line("c2", 30, ref["c2"].substr(29, 1), std::string(1, char(std::tolower(ref["c2"][29])))),
      line("c2", 40, ref["c2"].substr(39, 1), "N"),  // an ALT that is no base: ambiguous
      line("c2", 50, ".", "A"),                      // a REF that is no allele
      line("c2", 698, ref["c2"].substr(697, 3), ref["c2"].substr(697, 1)),  // deletes the last bases
      line("c2", 700, ref["c2"].substr(699, 1), ref["c2"].substr(699, 1) + "ACG"),  // runs past the end
      line("c2", 701, "A", "C"),                     // past the contig's end: REF cannot match
      line("zz", 10, "A", "C"),                      // contig absent from the FASTA
  };
  const std::string vcf = dir.write("in.vcf", vcf_text(lines));
  auto o = options(dir, fasta, vcf, 128);
  auto sum = pipelines::vep(m, o);
  CHECK(sum.records == int64_t(lines.size()));
  auto t = read_table(o.h5_output);
  const std::vector<std::string> expect = {"symbolic", "star",     "ok", "breakend", "missing", "ref_mismatch",
                                           "too_long", "ambiguous", "ok", "invalid", "no_change", "ambiguous",
                                           "invalid", "contig_end", "contig_end", "ref_mismatch", "no_contig"};
  CHECK(t.status == expect);
  CHECK(sum.by_status[size_t(pipelines::VepStatus::ref_mismatch)] == 2);
  CHECK(sum.records_past_end == 1);  // for the command's warning: another assembly?
  CHECK(sum.first_past_end == "c2:701");
  CHECK(sum.contig_lengths_differ.empty());
  CHECK(sum.by_status[size_t(pipelines::VepStatus::ok)] == 2);
  CHECK(sum.alts == int64_t(expect.size()));
  CHECK(sum.first_missing_contig == "zz");  // for the command's warning
  {  // a ##contig length other than the FASTA's: listed for a warning
    std::string text = vcf_text(lines);
    text.replace(text.find("length=700"), 10, "length=999");
    auto other = options(dir, fasta, dir.write("other.vcf", text), 128);
    other.output = dir.file("other.out.vcf");
    other.h5_output.clear();
    CHECK(pipelines::vep(m, other).contig_lengths_differ == std::vector<std::string>{"c2 (VCF 999, FASTA 700)"});
  }
  for (size_t i = 0; i < expect.size(); ++i) CHECK(std::isnan(t.llr[i]) == (expect[i] != "ok"));
  int64_t with_status = 0;
  CHECK(count_records(o.output, nullptr, &with_status) == int64_t(lines.size()));
  CHECK(with_status == int64_t(lines.size()) - 1);  // the record without ALT has no Number=A value

  // A contig absent from the FASTA is an error when asked.
  o.missing_contig_error = true;
  CHECK_THROWS_AS(pipelines::vep(m, o), InputError);

  // A one-base contig: neither window has a base to score (the first position is never
  // predicted), so its LLR would be 0 whatever the model: contig_end, on one strand or both,
  // the naive way too. A two-base contig has one to score.
  {
    const std::string tiny = dir.write("tiny.fa", ">one\nA\n>two\nAC\n");
    REQUIRE(fai_build(tiny.c_str()) == 0);
    const std::string tiny_vcf =
        dir.write("tiny.vcf", "##fileformat=VCFv4.2\n##contig=<ID=one,length=1>\n##contig=<ID=two,length=2>\n"
                              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                              "one\t1\t.\tA\tC\t.\t.\t.\ntwo\t1\t.\tA\tG\t.\t.\t.\n");
    for (int variant = 0; variant < 4; ++variant) {
      auto one = options(dir, tiny, tiny_vcf, 128);
      one.naive = variant & 1;
      one.both_strands = variant < 2;
      INFO("naive " << one.naive << ", both strands " << one.both_strands);
      const auto s = pipelines::vep(m, one);
      CHECK(s.by_status[size_t(pipelines::VepStatus::contig_end)] == 1);
      CHECK(s.scored() == 1);
      const auto tt = read_table(one.h5_output);
      CHECK(tt.status == std::vector<std::string>{"contig_end", "ok"});
      CHECK(std::isnan(tt.llr[0]));
      CHECK(std::isfinite(tt.llr[1]));
      CHECK(tt.llr[1] != 0);
    }
  }

  // Unsorted input: a clear error naming the record; no output left behind.
  const std::string unsorted = dir.write("unsorted.vcf", vcf_text({line("c1", 900, ref["c1"].substr(899, 1), "A"),
                                                                   line("c1", 800, ref["c1"].substr(799, 1), "A")}));
  auto u = options(dir, fasta, unsorted, 128);
  u.output = dir.file("unsorted_out.vcf");
  u.h5_output.clear();
  CHECK_THROWS_WITH(pipelines::vep(m, u), Catch::Contains("c1:800") && Catch::Contains("bcftools sort"));
  CHECK_FALSE(test::fs::exists(u.output));
  u.input = dir.write("split.vcf", vcf_text({line("c1", 9, ref["c1"].substr(8, 1), "A"),
                                             line("c2", 9, ref["c2"].substr(8, 1), "A"),
                                             line("c1", 19, ref["c1"].substr(18, 1), "A")}));
  CHECK_THROWS_WITH(pipelines::vep(m, u), Catch::Contains("bcftools sort"));
}

TEST_CASE("vep: the output reads back with htslib and bcftools, in every output type", "[vep]") {
  TempDir dir;
  auto m = golden_model();
  std::string fasta;
  auto ref = make_reference(dir, fasta);
  std::vector<std::string> lines;
  for (int64_t p = 100; p < 2800; p += 97) lines.push_back(line("c1", p, ref["c1"].substr(size_t(p - 1), 1), "A,T"));
  const std::string vcf = dir.write("in.vcf", vcf_text(lines));
  for (const char* name : {"o.vcf.gz", "o.vcf", "o.bcf", "o.ubcf"}) {
    INFO(name);
    auto o = options(dir, fasta, vcf, 128);
    o.output = dir.file(name);
    o.output_type = std::string(name) == "o.ubcf" ? 'u' : 0;
    o.h5_output.clear();
    pipelines::vep(m, o);
    bool info_ok = false;
    int64_t with_status = 0;
    CHECK(count_records(o.output, &info_ok, &with_status) == int64_t(lines.size()));
    CHECK(info_ok);
    CHECK(with_status == int64_t(lines.size()));
    const int rc = std::system(("bcftools view " + o.output + " > " + dir.file("view.txt") + " 2>&1").c_str());
    CHECK(rc == 0);
  }
  int status = 0;
  auto hdr = test::run_shell("bcftools view -h " + dir.file("o.vcf.gz"), status);
  CHECK(status == 0);
  CHECK_THAT(hdr, Catch::Contains("##mambadna=<model=") && Catch::Contains("window=128"));
  // Regions restrict scoring; the other records are written without the fields.
  auto o = options(dir, fasta, vcf, 128);
  o.regions = {io::Region{"c1", 1000, 2000, {}}};
  auto sum = pipelines::vep(m, o);
  int64_t with_status = 0;
  CHECK(count_records(o.output, nullptr, &with_status) == int64_t(lines.size()));
  int64_t inside = 0;
  for (int64_t p = 100; p < 2800; p += 97) inside += p - 1 >= 1000 && p - 1 < 2000;
  CHECK(with_status == inside);
  CHECK(sum.out_of_region == int64_t(lines.size()) - inside);
  CHECK(sum.scores_dropped == 0);  // an unscored input
  {  // A scored file rescored in the regions: the others' earlier fields are counted, for a warning.
    auto again = options(dir, fasta, dir.file("o.vcf.gz"), 128);
    again.output = dir.file("again.vcf");
    again.h5_output.clear();
    again.regions = o.regions;
    const auto s = pipelines::vep(m, again);
    CHECK(s.scores_dropped == int64_t(lines.size()) - inside);
    CHECK(s.out_of_region == s.scores_dropped);
    int64_t rescored = 0;
    CHECK(count_records(again.output, nullptr, &rescored) == int64_t(lines.size()));
    CHECK(rescored == inside);
  }
  {  // A deletion from 995 that runs into the region: selected by its span (bcftools' record), not its POS.
    const std::string del = vcf_text({line("c1", 996, ref["c1"].substr(995, 10), ref["c1"].substr(995, 1))});
    auto d = options(dir, fasta, dir.write("del.vcf", del), 128);
    d.output = dir.file("del.out.vcf");
    d.h5_output.clear();
    d.regions = {io::Region{"c1", 1000, 2000, {}}};
    CHECK(pipelines::vep(m, d).out_of_region == 1);
    d.regions_overlap = io::RegionsOverlap::record;
    CHECK(pipelines::vep(m, d).out_of_region == 0);
    d.regions = {io::Region{"c1", 1005, 2000, {}}};  // the REF span is 995..1004: it ends before
    CHECK(pipelines::vep(m, d).out_of_region == 1);
  }
}

TEST_CASE("vep: S. aureus variants end to end", "[vep]") {
  TempDir dir;
  auto m = golden_model();
  // The genome is plain gzip with a long header: rewrite it as a FASTA named like the VCF's contig.
  io::SequenceReader reader(test::data_file("genomes/saureus_nctc8325.fa.gz"));
  io::Chunk c;
  std::string seq;
  while (reader.next(c, 1 << 20)) seq.append(c.tokens.begin(), c.tokens.end());
  REQUIRE(seq.size() == 2821361);
  const std::string fasta = dir.write("sa.fa", ">NC_007795\n" + seq + "\n");
  REQUIRE(fai_build(fasta.c_str()) == 0);
  auto o = options(dir, fasta, test::data_file("variants/saureus_nctc8325.vcf.gz"), 256);
  o.streams = 8;
  o.chunk = 256;
  auto sum = pipelines::vep(m, o);
  CHECK(sum.records == 109);
  CHECK(sum.by_status[size_t(pipelines::VepStatus::ref_mismatch)] == 0);  // every REF matches
  // One REF ends in N (2349963): ambiguous, the sums would skip that base.
  CHECK(sum.by_status[size_t(pipelines::VepStatus::ambiguous)] == 1);
  CHECK(sum.scored() + sum.by_status[size_t(pipelines::VepStatus::too_long)] + 1 == sum.alts);
  CHECK(sum.scored() > 90);
  auto t = read_table(o.h5_output);
  for (size_t i = 0; i < t.llr.size(); ++i)
    if (t.status[i] == "ok") CHECK(std::isfinite(t.llr[i]));
  CHECK(count_records(o.output) == 109);
}

TEST_CASE("vep: chr20 calls whose REF mostly mismatches the reference", "[vep]") {
  TempDir dir;
  auto m = golden_model();
  // The file's #CHROM line is space-separated, which htslib refuses: rewrite it with tabs.
  const std::string plain = dir.file("p24.vcf.txt");
  test::decompress(test::data_file("variants/chr20_pysam_24.vcf.gz"), plain);
  std::ifstream in(plain);
  std::string text, l;
  while (std::getline(in, l)) {
    if (l.rfind("#CHROM", 0) == 0) l = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO";
    text += l + "\n";
  }
  auto o = options(dir, test::data_file("genomes/human_grch37_chr20.fa.gz"), dir.write("p24.vcf", text), 128);
  auto sum = pipelines::vep(m, o);
  CHECK(sum.records == 717);
  CHECK(sum.by_status[size_t(pipelines::VepStatus::ref_mismatch)] == 556);
  CHECK(sum.scored() == 717 - 556);
  // Restricted to a region: only its records are scored and counted.
  o.regions = {io::parse_region("20:1-30000000")};
  auto r = pipelines::vep(m, o);
  CHECK(r.records == 717);
  CHECK(r.alts + r.out_of_region == 717);
  CHECK(r.alts > 0);
  CHECK(r.alts < 717);
  CHECK(r.by_status[size_t(pipelines::VepStatus::ref_mismatch)] < 556);
}

TEST_CASE("vep: a scored VCF scored again, alleles in lower case, regions off the FASTA", "[vep]") {
  TempDir dir;
  auto m = golden_model();
  std::string fasta;
  auto ref = make_reference(dir, fasta);
  const std::string b = ref["c1"].substr(1499, 1);  // upper-case reference
  const std::string alt = std::toupper(b[0]) == 'A' ? "C" : "A";
  std::string lower = alt;
  lower[0] = char(std::tolower(lower[0]));
  const std::string vcf = dir.write("in.vcf", vcf_text({line("c1", 1500, b, alt + "," + lower + "," + b + "TT"),
                                                       line("c1", 1600, ref["c1"].substr(1599, 1), alt)}));
  // VCF alleles are case-blind: the lower-case ALT scores as the upper-case one.
  auto o = options(dir, fasta, vcf, 128);
  o.model_path = "model,v2>\"q\"\\.h5";  // quoted in the header line, '"' and '\\' escaped (VCF 4.3)
  pipelines::vep(m, o);
  {
    ReadBack back(o.output);
    CHECK(back.header_text().find("##mambadna=<model=\"model,v2>\\\"q\\\"\\\\.h5\",window=128,") != std::string::npos);
    const bcf_hrec_t* h = nullptr;  // as htslib parses it: the four keys, none split by a quote
    for (int i = 0; i < back.hdr->nhrec; ++i)
      if (std::string(back.hdr->hrec[i]->key) == "mambadna") h = back.hdr->hrec[i];
    REQUIRE(h != nullptr);
    REQUIRE(h->nkeys == 4);
    CHECK(std::string(h->keys[1]) == "window");
    CHECK(std::string(h->vals[1]) == "128");
    CHECK(std::string(h->keys[3]) == "command");
  }
  auto t = read_table(o.h5_output);
  REQUIRE(t.llr.size() == 4);
  CHECK(t.status[1] == "ok");
  CHECK(std::fabs(t.llr[0] - t.llr[1]) < 1e-5);  // float32 sums of two branches (the case cost ~2.6 nats)
  // Scored again, forward strand only: the first run's fields go, the reverse strand's too.
  o.input = o.output;
  o.output = dir.file("again.vcf");
  o.h5_output.clear();
  o.both_strands = false;
  {  // an input header without ##contig lines: the output declares the reference's contigs
    std::string bare = vcf_text({line("c1", 1600, ref["c1"].substr(1599, 1), alt)});
    bare.erase(bare.find("##contig"), bare.find("#CHROM") - bare.find("##contig"));
    auto c = options(dir, fasta, dir.write("bare.vcf", bare), 128);
    c.output = dir.file("bare.out.vcf");
    c.h5_output.clear();
    pipelines::vep(m, c);
    ReadBack back(c.output);
    for (const char* contig : {"c1", "c2"}) {
      bcf_hrec_t* h = bcf_hdr_get_hrec(back.hdr, BCF_HL_CTG, "ID", contig, nullptr);
      REQUIRE(h != nullptr);
      const int k = bcf_hrec_find_key(h, "length");
      REQUIRE(k >= 0);
      CHECK(h->vals[k] == std::to_string(ref[contig].size()));
    }
    // Declared without a length (as htslib declares the contigs of a .tbi when the header has
    // none): the FASTA's length is added.
    std::string no_length = vcf_text({line("c1", 1600, ref["c1"].substr(1599, 1), alt)});
    no_length.replace(no_length.find("##contig=<ID=c1,length=3000>"), 28, "##contig=<ID=c1>");
    c.input = dir.write("no_length.vcf", no_length);
    c.output = dir.file("no_length.out.vcf");
    pipelines::vep(m, c);
    ReadBack again(c.output);
    bcf_hrec_t* h = bcf_hdr_get_hrec(again.hdr, BCF_HL_CTG, "ID", "c1", nullptr);
    REQUIRE(h != nullptr);
    REQUIRE(bcf_hrec_find_key(h, "length") >= 0);
    CHECK(h->vals[bcf_hrec_find_key(h, "length")] == std::to_string(ref["c1"].size()));
    CHECK(again.header_text().find("##contig=<ID=c1,length=" + std::to_string(ref["c1"].size()) + ">") !=
          std::string::npos);
    // In BCF (whose header keeps htslib's IDX key, last): the length before it, and read back.
    c.output = dir.file("no_length.out.bcf");
    c.output_type = 'b';
    pipelines::vep(m, c);
    ReadBack bcf(c.output);
    CHECK(bcf.hdr->id[BCF_DT_CTG][bcf_hdr_name2id(bcf.hdr, "c1")].val->info[0] == ref["c1"].size());
    int status = 0;
    const std::string raw =  // (the header as stored, which bcftools view -h prints without IDX)
        test::run_shell("bgzip -dc '" + c.output + "' | tr -c '[:print:]' '\\n' | grep '^##contig=<ID=c1'", status);
    CHECK(raw == "##contig=<ID=c1,length=" + std::to_string(ref["c1"].size()) + ",IDX=0>\n");
  }
  // -r on a contig the FASTA lacks selects nothing and is listed; c1's region still works.
  o.regions = {io::Region{"chrNope", 0, 100, {}}, io::Region{"c1", 1400, 1550, {}}};
  auto sum = pipelines::vep(m, o);
  REQUIRE(sum.regions_skipped.size() == 1);
  CHECK(sum.regions_skipped[0].find("chrNope") == 0);
  {  // a region past its contig's end selects nothing either: a record there is not scored
    const std::string past = vcf_text({line("c1", 1500, ref["c1"].substr(1499, 1), alt), line("c2", 760, "A", "C")});
    auto p = options(dir, fasta, dir.write("past.vcf", past), 128);
    p.output = dir.file("past.out.vcf");
    p.h5_output.clear();
    p.regions = {io::Region{"c1", 1400, 1550, {}}, io::Region{"c2", 749, 800, {}}};
    const auto s = pipelines::vep(m, p);
    CHECK(s.regions_past_end == std::vector<std::string>{"c2:750-800"});
    CHECK(s.out_of_region == 1);
    CHECK(s.alts == 1);
  }
  {
    ReadBack back(o.output);
    const int64_t n = back.each([&](bcf1_t* rec, int64_t i) {
      INFO("record " << i);
      CHECK(bcf_get_info(back.hdr, rec, "MAMBADNA_LLR_RC") == nullptr);  // stale, dropped
      // The first record is in the region (scored again); the second is not (no scores left).
      CHECK((bcf_get_info(back.hdr, rec, "MAMBADNA_LLR") != nullptr) == (i == 0));
    });
    CHECK(n == 2);
  }
  {  // the first run's output under a header that no longer declares the fields (bcftools
     // reheader with the original header): its fields go all the same, in VCF and in BCF
    const std::string first = o.input, reh = dir.file("reheader.vcf.gz");
    int status = 0;
    test::run_shell("bcftools view -h " + first + " | grep -v 'ID=MAMBADNA_' > " + dir.file("orig.hdr") +
                        " && bcftools reheader -h " + dir.file("orig.hdr") + " -o " + reh + " " + first,
                    status);
    REQUIRE(status == 0);
    for (const char* name : {"reh.out.vcf", "reh.out.bcf"}) {
      INFO(name);
      auto r = options(dir, fasta, reh, 128);
      r.output = dir.file(name);
      r.h5_output.clear();
      r.both_strands = false;
      r.regions = {io::Region{"c1", 1400, 1550, {}}};
      pipelines::vep(m, r);
      ReadBack back(r.output);
      const int64_t n = back.each([&](bcf1_t* rec, int64_t i) {
        INFO("record " << i);
        CHECK(bcf_get_info(back.hdr, rec, "MAMBADNA_LLR_RC") == nullptr);
        CHECK((bcf_get_info(back.hdr, rec, "MAMBADNA_LLR") != nullptr) == (i == 0));
        CHECK((bcf_get_info(back.hdr, rec, "MAMBADNA_STATUS") != nullptr) == (i == 0));
      });
      CHECK(n == 2);
    }
  }
  o.regions = {io::Region{"chrNope", 0, 100, {}}};
  CHECK_THROWS_WITH(pipelines::vep(m, o), Catch::Contains("unknown contig 'chrNope'"));
}

TEST_CASE("vep: an N read by one window only is ambiguous, an MNP keeps each base's case", "[vep]") {
  TempDir dir;
  auto m = golden_model();
  std::string fasta;
  auto ref = make_reference(dir, fasta);
  const std::string& g = ref["c1"];  // soft-masked [1200, 1300), N run [2000, 2040)
  auto other = [](char b) { return std::toupper(b) == 'A' ? 'C' : 'A'; };
  // W 128: a deletion at 0-based 1960 has the window [1888, 2016), which ends in the N run; its
  // forward ALT window reads on 4 more N where the reference window reads 4 bases it deleted:
  // the windows would score different numbers of bases.
  const std::string del = g.substr(1960, 5);
  // An MNP over the soft-mask boundary (1198, 1199 upper; 1200, 1201 lower) that changes only
  // its last base is the SNV at 1201: the unchanged bases keep their case.
  std::string mnp = g.substr(1198, 4), snv_alt(1, other(g[1201]));
  std::string mnp_alt = mnp;
  mnp_alt[3] = char(std::toupper(other(g[1201])));
  const std::string vcf = dir.write("in.vcf", vcf_text({line("c1", 1199, mnp, mnp_alt), line("c1", 1202, g.substr(1201, 1), snv_alt),
                                                       line("c1", 1961, del, del.substr(0, 1))}));
  auto o = options(dir, fasta, vcf, 128);
  const auto sum = pipelines::vep(m, o);
  CHECK(sum.scored() == 2);  // the counts follow the status found by scoring
  CHECK(sum.by_status[size_t(pipelines::VepStatus::ambiguous)] == 1);
  auto t = read_table(o.h5_output);
  REQUIRE(t.status.size() == 3);
  CHECK(t.status[0] == "ok");
  CHECK(t.status[1] == "ok");
  CHECK(std::fabs(t.llr[0] - t.llr[1]) < 1e-4);  // the same haplotype
  CHECK(t.status[2] == "ambiguous");
  CHECK(std::isnan(t.llr[2]));
}

TEST_CASE("vep: a model with non-finite log-probabilities is refused, and no output is left", "[pipelines][vep]") {
  // Its LLRs would have been sums of nothing (0) or nan: the weights of a diverged training run.
  TempDir dir;
  std::string fasta;
  auto ref = make_reference(dir, fasta);
  auto ck = model::load_checkpoint(mambadna::test::shared_dir() + "/golden/tiny.h5");
  const model::ParamSpec& norm_f = ck.table.specs.back();
  std::fill_n(ck.params.begin() + norm_f.offset, norm_f.size, 3e38f);  // logits overflow
  model::Mamba<float> m(ck.config, std::move(ck.params));
  const std::string r = ref["c1"].substr(1000, 1);
  auto o = options(dir, fasta, dir.write("in.vcf", vcf_text({line("c1", 1001, r, r == "A" ? "C" : "A")})), 256);
  o.model_path = "broken.h5";
  CHECK_THROWS_WITH(pipelines::vep(m, o), Catch::StartsWith("broken.h5: gives non-finite log-probabilities"));
  CHECK_FALSE(std::filesystem::exists(o.output));
  CHECK_FALSE(std::filesystem::exists(o.h5_output));
}

TEST_CASE("vep: an invalid reference character stops the run, or reads as N with --invalid N", "[pipelines][vep]") {
  // The same reference twice: with '*' at 0-based 500 of c1, and with N there. An SNV at 480
  // (W 128) reads position 500 in both of its windows.
  TempDir dir;
  auto m = golden_model();
  std::string fasta;
  auto ref = make_reference(dir, fasta);
  auto write_with = [&](char c, const std::string& name) {
    std::string text;
    for (auto [contig, seq] : ref) {
      if (contig == "c1") seq[500] = c;
      text += ">" + contig + "\n" + seq + "\n";
    }
    const std::string path = dir.write(name, text);
    REQUIRE(fai_build(path.c_str()) == 0);
    return path;
  };
  const std::string star = write_with('*', "star.fa"), n = write_with('N', "n.fa");
  const std::string& g = ref["c1"];
  const std::string vcf = dir.write("in.vcf", vcf_text({line("c1", 481, g.substr(480, 1), g[480] == 'A' ? "C" : "A")}));
  auto o = options(dir, star, vcf, 128);
  CHECK_THROWS_WITH(pipelines::vep(m, o), Catch::Contains(star) && Catch::Contains("c1") &&
                                              Catch::Contains("invalid character '*'") &&
                                              Catch::Contains("use --invalid N"));
  CHECK_FALSE(std::filesystem::exists(o.output));  // nothing half-written
  o.tok.invalid = io::InvalidMode::to_n;
  pipelines::vep(m, o);
  const Table with_star = read_table(o.h5_output);
  CHECK(io::H5File::open_read(o.h5_output).attr_str("/", "invalid") == "N");
  auto on = options(dir, n, vcf, 128);
  pipelines::vep(m, on);
  const Table with_n = read_table(on.h5_output);
  REQUIRE(with_star.status.size() == 1);
  REQUIRE(with_n.status.size() == 1);
  CHECK(with_star.status[0] == "ok");
  CHECK(with_star.llr[0] == with_n.llr[0]);  // the same tokens: the same sums
  CHECK(with_star.fwd[0] == with_n.fwd[0]);
  CHECK(with_star.rc[0] == with_n.rc[0]);
  CHECK(std::isfinite(with_star.llr[0]));
}
