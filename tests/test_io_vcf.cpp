// io/vcf: the sorted-input rule with the offending record named, the output type chosen as
// bcftools does, files that appear only when complete, and BCF output refusing a contig its
// header never declared.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/error.h"
#include "io/output_file.h"
#include "io/vcf.h"
#include "test_io_util.h"

using namespace mambadna;
using mambadna::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kHeader =
    "##fileformat=VCFv4.2\n"
    "##contig=<ID=chrA,length=1000>\n"
    "##contig=<ID=chrB,length=1000>\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

// Reads every record; returns how many were read before an error (or all).
int64_t read_all(const std::string& path) {
  io::VcfReader r(path);
  io::BcfRecPtr rec(bcf_init());
  while (r.next(rec.get())) {
  }
  return r.records();
}

}  // namespace

TEST_CASE("vcf: a sorted file reads through, unsorted ones are refused at the record", "[io][vcf]") {
  TempDir dir;
  const auto ok = dir.write("ok.vcf", kHeader + "chrA\t5\t.\tA\tC\t.\t.\t.\nchrA\t5\t.\tA\tG\t.\t.\t.\n"
                                                "chrA\t9\t.\tA\tC\t.\t.\t.\nchrB\t1\t.\tA\tC\t.\t.\t.\n");
  CHECK(read_all(ok) == 4);
  const auto back = dir.write("back.vcf", kHeader + "chrA\t9\t.\tA\tC\t.\t.\t.\nchrA\t5\t.\tA\tC\t.\t.\t.\n");
  CHECK_THROWS_WITH(read_all(back), Catch::Contains("record 2 (chrA:5) comes after position 9") &&
                                        Catch::Contains("bcftools sort"));
  const auto again = dir.write("again.vcf", kHeader + "chrA\t9\t.\tA\tC\t.\t.\t.\nchrB\t5\t.\tA\tC\t.\t.\t.\n"
                                                      "chrA\t10\t.\tA\tC\t.\t.\t.\n");
  CHECK_THROWS_WITH(read_all(again), Catch::Contains("record 3 (chrA:10)") &&
                                         Catch::Contains("appears again"));
  {  // a bgzipped VCF cut short: an error naming the last good record, not a silent end
    std::string body = kHeader;
    for (int i = 1; i <= 20000; ++i) body += "chrA\t" + std::to_string(i) + "\t.\tA\tC\t.\t.\t.\n";
    const auto plain = dir.write("long.vcf", body);
    int status = 0;
    mambadna::test::run_shell("bgzip -c '" + plain + "' | head -c 20000 > '" + dir.file("cut.vcf.gz") + "'",
                              status);
    REQUIRE(status == 0);
    CHECK_THROWS_WITH(read_all(dir.file("cut.vcf.gz")), Catch::Contains("truncated"));
  }
  {  // plain gzip cut short: the stream fails at every read (vep looped on it, printing
     // htslib's two lines forever); cut in the header, the header cannot be read
    std::string body = kHeader;
    for (int i = 1; i <= 20000; ++i) body += "chrA\t" + std::to_string(i) + "\t.\tA\tC\t.\t.\t.\n";
    const auto plain = dir.write("long_gz.vcf", body);
    int status = 0;
    std::string header = "##fileformat=VCFv4.2\n";
    for (int i = 0; i < 3000; ++i) header += "##contig=<ID=c" + std::to_string(i * 7919 % 100003) + ">\n";
    const auto long_header = dir.write("long_header.vcf", header + kHeader);
    mambadna::test::run_shell("gzip -c '" + plain + "' | head -c 20000 > '" + dir.file("cut_gz.vcf.gz") +
                                  "' && gzip -c '" + long_header + "' | head -c 4000 > '" +
                                  dir.file("head_gz.vcf.gz") + "'",
                              status);
    REQUIRE(status == 0);
    CHECK_THROWS_WITH(read_all(dir.file("cut_gz.vcf.gz")),
                      Catch::Contains("cut_gz.vcf.gz: read error (truncated or corrupt compressed data) after record"));
    // The file that looped: a shared VCF's sites, gzipped and cut at 25,000 bytes.
    mambadna::test::run_shell("zcat '" + mambadna::test::data_file("variants/chr20_pysam_2.vcf.gz") +
                                  "' | cut -f1-8 | gzip -c | head -c 25000 > '" + dir.file("sites.vcf.gz") + "'",
                              status);
    REQUIRE(status == 0);
    CHECK_THROWS_WITH(read_all(dir.file("sites.vcf.gz")),
                      Catch::Contains("sites.vcf.gz: read error (truncated or corrupt compressed data) after record 34"));
    CHECK_THROWS_WITH(io::VcfReader(dir.file("head_gz.vcf.gz")),
                      Catch::Contains("head_gz.vcf.gz: cannot read the VCF header: read error (truncated or "
                                      "corrupt compressed data)"));
  }
  {  // a record without the samples its header names: refused at the reader (htslib refuses a
     // line with some of them; it reads one with none, then fails to write it, naming the output)
    const auto two = dir.write("samples.vcf",
                               "##fileformat=VCFv4.2\n##contig=<ID=chrA>\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"g\">\n"
                               "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\n"
                               "chrA\t5\t.\tA\tC\t.\t.\t.\tGT\t0/1\t1/1\n"
                               "chrA\t6\t.\tA\tC\t.\t.\t.\tGT\t0/1\n");
    // The record that fails is named by its own line, with htslib's reason.
    CHECK_THROWS_WITH(read_all(two), Catch::Contains("samples.vcf: record 2 (chrA:6) is malformed: its sample "
                                                     "columns do not match the header's samples"));
    // A FORMAT value of another type than declared: the line named (htslib's own line says why).
    const auto fmt = dir.write("fmt.vcf",
                               "##fileformat=VCFv4.2\n##contig=<ID=chrA>\n##FORMAT=<ID=DP,Number=1,Type=Integer,Description=\"d\">\n"
                               "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\n"
                               "chrA\t5\t.\tA\tC\t.\t.\t.\tDP\t3\n"
                               "chrA\t7\t.\tA\tC\t.\t.\t.\tDP\txx\n");
    CHECK_THROWS_WITH(read_all(fmt), Catch::Contains("fmt.vcf: record 2 (chrA:7) is malformed"));
    const auto eight = dir.write("samples8.vcf",
                                 "##fileformat=VCFv4.2\n##contig=<ID=chrA>\n##INFO=<ID=FR,Number=1,Type=Float,Description=\"f\">\n"
                                 "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\n"
                                 "chrA\t4\t.\tA\tC\t.\t.\tFR=1.0\tGT\t0/1\n"
                                 "chrA\t5\t.\tA\tC\t.\tPASS\tFR=1.0;FR=2.0\n");
    CHECK_THROWS_WITH(read_all(eight), Catch::Contains("samples8.vcf: record 2 (chrA:5) has none of the 1 sample "
                                                       "columns its header names"));
  }
  CHECK_THROWS_WITH(io::VcfReader(dir.file("absent.vcf")), Catch::Contains("absent.vcf: cannot open: No such file"));
  // A file htslib cannot place (binary garbage): not a VCF, rather than "cannot open".
  std::string garbage(3000, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = char((i * 7919 + 13) % 251 + 1);
  CHECK_THROWS_WITH(io::VcfReader(dir.write("garbage.bin", garbage)),
                    Catch::Contains("garbage.bin: not a VCF or BCF file (htslib does not recognise its format)"));
  // A #CHROM line separated by spaces (as in some shared files): the reason, not just "cannot".
  const auto spaces = dir.write("spaces.vcf", "##fileformat=VCFv4.2\n#CHROM POS ID REF ALT QUAL FILTER INFO\n"
                                              "chrA\t5\t.\tA\tC\t.\t.\t.\n");
  CHECK_THROWS_WITH(io::VcfReader(spaces), Catch::Contains("#CHROM line (line 2) is separated by spaces"));
  // ... and one cut short after #CHROM: said so, not blamed on spaces.
  const auto cut = dir.write("cut.vcf", "##fileformat=VCFv4.2\n#CHROM");
  CHECK_THROWS_WITH(io::VcfReader(cut), Catch::Contains("#CHROM line (line 2) has no columns after #CHROM (a file cut short?)"));
  // Lines that stop short, which htslib reads with the missing columns unset (a record with no
  // REF crashed vep; one with no FILTER was written back as garbage): refused at the record,
  // plain or bgzipped. Seven columns whose FILTER is "q1;q2;q3": htslib's parse puts NULs
  // between the filters, which a count after it took for columns (read as 9).
  for (const char* text :
       {"chrA\t7", "chrA\t7\t.\tA", "foo", "chrA\t7\t.\tA\tC\t.\t.", "chrA\t7\t.\tA\tC\t.\tq1;q2;q3"}) {
    const std::string line = text;
    INFO(line);
    const auto cut = dir.write("short.vcf", kHeader + "chrA\t5\t.\tA\tC\t.\t.\t.\n" + line + "\n");
    const int64_t columns = 1 + std::count(line.begin(), line.end(), '\t');
    const std::string why = "has " + std::to_string(columns) + (columns == 1 ? " column;" : " columns;");
    CHECK_THROWS_WITH(read_all(cut), Catch::Contains("short.vcf: record 2") && Catch::Contains(why) &&
                                         Catch::Contains("at least 8"));
    int status = 0;
    mambadna::test::run_shell("bgzip -f '" + cut + "'", status);
    REQUIRE(status == 0);
    CHECK_THROWS_WITH(read_all(cut + ".gz"), Catch::Contains("record 2") && Catch::Contains(why));
  }
  CHECK(read_all(dir.write("eight.vcf", kHeader + "chrA\t5\t.\tA\tC\t.\t.\t.\n")) == 1);
  // A POS that is no number (htslib reads "abc" as 0, "5abc" as 5); 0 is a telomere.
  for (const char* pos : {"abc", "5abc", "1e3"})
    CHECK_THROWS_WITH(read_all(dir.write("pos.vcf", kHeader + "chrA\t" + pos + "\t.\tA\tC\t.\t.\t.\n")),
                      Catch::Contains("record 1 (chrA): POS '" + std::string(pos) + "' is not a number"));
  CHECK(read_all(dir.write("zero.vcf", kHeader + "chrA\t0\t.\tA\tC\t.\t.\t.\n")) == 1);
  // An empty fixed column: htslib reads an empty ALT as an allele of no bases.
  CHECK_THROWS_WITH(read_all(dir.write("ealt.vcf", kHeader + "chrA\t5\t.\tA\t\t.\t.\t.\n")),
                    Catch::Contains("record 1 (chrA:5): the ALT column is empty (write '.' for a missing value)"));
  CHECK_THROWS_WITH(read_all(dir.write("einfo.vcf", kHeader + "chrA\t5\t.\tA\tC\t.\t.\t\tGT\n")),
                    Catch::Contains("record 1 (chrA:5): the INFO column is empty"));
  // Blank lines (a hand-edited file's end) are no records.
  CHECK(read_all(dir.write("blank.vcf", kHeader + "chrA\t5\t.\tA\tC\t.\t.\t.\n\n \nchrA\t6\t.\tA\tC\t.\t.\t.\n\n")) == 2);
  const auto no_chrom = dir.write("nochrom.vcf", "##fileformat=VCFv4.2\n##contig=<ID=chrA>\n");
  CHECK_THROWS_WITH(io::VcfReader(no_chrom), Catch::Contains("no #CHROM header line"));
  {  // cut at a BGZF block boundary: every record read is whole, only the end block is missing
    std::string body = kHeader;
    for (int i = 1; i <= 20000; ++i) body += "chrA\t" + std::to_string(i) + "\t.\tA\tC\t.\t.\t.\n";
    const auto plain = dir.write("long2.vcf", body);
    int status = 0;
    const std::string gz = dir.file("long2.vcf.gz");
    mambadna::test::run_shell("bgzip -c '" + plain + "' > '" + gz + "'", status);
    REQUIRE(status == 0);
    std::ifstream in(gz, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(bytes.size() > 18);
    const size_t block = size_t(uint8_t(bytes[16])) + (size_t(uint8_t(bytes[17])) << 8) + 1;  // BSIZE + 1
    REQUIRE(block < bytes.size());
    const auto cut = dir.write("cut2.vcf.gz", bytes.substr(0, block));
    CHECK_THROWS_WITH(read_all(cut), Catch::Contains("end-of-file block is missing"));
    CHECK(read_all(gz) == 20000);  // the whole file still reads
  }
  const auto fasta = dir.write("x.fa", ">x\nACGT\n");
  CHECK_THROWS_WITH(io::VcfReader(fasta), Catch::Contains("not a VCF or BCF"));
}

TEST_CASE("vcf: output type from -O or the file name", "[io][vcf]") {
  const std::pair<const char*, char> table[] = {{"out.vcf", 'v'},    {"out.vcf.gz", 'z'}, {"out.vcf.bgz", 'z'},
                                                {"out.gz", 'z'},     {"out.bcf", 'b'},    {"-", 'v'},
                                                {"out.txt", 'v'},    {"OUT.BCF", 'b'},    {"out.VCF.GZ", 'z'},
                                                {"out.bgz", 'z'},    {"out.bcf.txt", 'v'}};
  for (const auto& [name, type] : table) {
    INFO(name);
    CHECK(io::vcf_output_type(name) == type);
  }
  CHECK(io::vcf_output_type("out.vcf", 'u') == 'u');
  CHECK_THROWS_WITH(io::vcf_output_type("out.vcf", 'x'), Catch::Contains("v, z, b or u"));
  // bcftools' -O: a letter, and for z and b a compression level
  int level = 5;
  CHECK(io::parse_vcf_output_type("z", &level) == 'z');
  CHECK(level == -1);
  CHECK(io::parse_vcf_output_type("z9", &level) == 'z');
  CHECK(level == 9);
  CHECK(io::parse_vcf_output_type("b0", &level) == 'b');
  CHECK(level == 0);
  CHECK(io::parse_vcf_output_type("u", &level) == 'u');
  for (const char* bad : {"", "x", "zz", "z10", "vz", "9"})
    CHECK_THROWS_WITH(io::parse_vcf_output_type(bad, &level), Catch::Contains("choose v, z, b or u"));
  CHECK_THROWS_WITH(io::parse_vcf_output_type("v1", &level), Catch::Contains("uncompressed VCF"));
  CHECK_THROWS_WITH(io::parse_vcf_output_type("u9", &level), Catch::Contains("uncompressed BCF"));
}

TEST_CASE("vcf: the writer compresses at the level asked, a directory is refused by name", "[io][vcf]") {
  TempDir dir;
  std::string text = kHeader;
  for (int p = 0; p < 2000; ++p) text += "chrA\t" + std::to_string(p / 2 + 1) + "\t.\tA\tC\t.\t.\t.\n";
  const auto in_path = dir.write("many.vcf", text);
  uintmax_t size[2] = {};
  for (const int level : {0, 9}) {
    io::VcfReader in(in_path);
    io::BcfRecPtr rec(bcf_init());
    const std::string out_path = dir.file("l" + std::to_string(level) + ".vcf.gz");
    io::VcfWriter out(out_path, 'z', in.header(), 0, level);
    while (in.next(rec.get())) out.write(rec.get());
    out.commit();
    CHECK(read_all(out_path) == 2000);
    size[level == 9] = fs::file_size(out_path);
  }
  CHECK(size[1] * 4 < size[0]);  // level 0 stores the blocks: several times the size
  fs::create_directory(dir.file("adir"));
  io::VcfReader in(in_path);
  CHECK_THROWS_WITH(io::VcfWriter(dir.file("adir"), 'v', in.header()),
                    Catch::Contains("adir: cannot write a VCF file: is a directory"));
}

TEST_CASE("vcf: the writer renames on commit, BCF refuses an undeclared contig", "[io][vcf]") {
  TempDir dir;
  const auto in_path = dir.write("in.vcf", kHeader + "chrA\t5\t.\tA\tC\t.\t.\t.\nchrZ\t7\t.\tA\tC\t.\t.\t.\n");
  for (const char type : {'v', 'z', 'b'}) {
    INFO("type " << type);
    io::VcfReader in(in_path);
    io::BcfRecPtr rec(bcf_init());
    const std::string out_path = dir.file(std::string("out.") + type);
    {
      io::VcfWriter out(out_path, type, in.header());
      REQUIRE(in.next(rec.get()));
      out.write(rec.get());
      CHECK_FALSE(fs::exists(out_path));  // only the temporary name so far
      REQUIRE(in.next(rec.get()));          // chrZ: htslib adds it to the header in memory
      if (type == 'b') {
        CHECK_THROWS_WITH(out.write(rec.get()), Catch::Contains("contig 'chrZ'") &&
                                                    Catch::Contains("-O v or -O z"));
        continue;  // destroyed without commit: nothing is left behind
      }
      out.write(rec.get());
      out.commit();
    }
    CHECK(read_all(out_path) == 2);
  }
  CHECK_FALSE(fs::exists(dir.file("out.b")));
  for (const auto& e : fs::directory_iterator(dir.file("")))
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("vcf: BCF refuses a tag its header never declared, links are written through", "[io][vcf]") {
  TempDir dir;
  const auto in_path = dir.write("tag.vcf", kHeader + "chrA\t5\t.\tA\tC\t.\t.\tFOO=3\n");
  io::VcfReader in(in_path);
  io::BcfRecPtr rec(bcf_init());
  {
    io::VcfWriter out(dir.file("tag.bcf"), 'b', in.header());
    REQUIRE(in.next(rec.get()));  // htslib declares FOO in memory, after the header was written
    io::BcfRecPtr copy(bcf_dup(rec.get()));  // a copy, as vep writes: htslib's own flag is gone
    CHECK_THROWS_WITH(out.write(copy.get()), Catch::Contains("tag 'FOO' is not declared"));
  }
  CHECK_FALSE(fs::exists(dir.file("tag.bcf")));
  {  // a position past 2^31 - 1 (htslib 1.16 writes a copy's cut to 32 bits); VCF holds it
    const auto big = dir.write("big.vcf", kHeader + "chrA\t4294967353\t.\tA\tC\t.\t.\t.\n");
    io::VcfReader in2(big);
    io::BcfRecPtr r2(bcf_init());
    REQUIRE(in2.next(r2.get()));
    io::BcfRecPtr copy(bcf_dup(r2.get()));
    io::VcfWriter bcf(dir.file("big.bcf"), 'b', in2.header());
    CHECK_THROWS_WITH(bcf.write(copy.get()), Catch::Contains("chrA:4294967353: a position past 2^31 - 1 cannot be "
                                                             "written in BCF"));
    io::VcfWriter vcf(dir.file("big.out.vcf"), 'v', in2.header());
    vcf.write(copy.get());
    vcf.commit();
    CHECK(read_all(dir.file("big.out.vcf")) == 1);
  }
  CHECK_FALSE(fs::exists(dir.file("big.bcf")));
  // A symbolic link (as /dev/stdout is) is written through, never replaced by a rename.
  const auto target = dir.write("target.vcf", "");
  fs::create_symlink(target, dir.file("link.vcf"));
  CHECK(io::is_special_file(dir.file("link.vcf")));
  {
    io::VcfReader in2(in_path);
    io::VcfWriter out(dir.file("link.vcf"), 'v', in2.header());
    io::BcfRecPtr r2(bcf_init());
    REQUIRE(in2.next(r2.get()));
    out.write(r2.get());
    out.commit();
  }
  CHECK(fs::is_symlink(dir.file("link.vcf")));
  CHECK(read_all(target) == 1);
}

TEST_CASE("vcf: regions select records as bcftools' --regions-overlap pos, record and variant", "[io][vcf]") {
  // Each record against each region, in each mode, compared with what bcftools view -r selects
  // from the same indexed file (htslib's own rule is the spec): SNVs, a left-anchored deletion
  // and insertion (the padding base is outside the variant's span), an MNV sharing a prefix,
  // a multi-allelic site whose ALTs share different prefixes, a symbolic deletion with INFO/END,
  // a missing ALT and an ALT equal to REF.
  TempDir dir;
  const std::string records =
      "chrA\t10\t.\tA\tC\t.\t.\t.\n"
      "chrA\t20\t.\tACGT\tA\t.\t.\t.\n"           // deletion: variant span 21-23
      "chrA\t30\t.\tG\tGTTT\t.\t.\t.\n"           // insertion between 30 and 31
      "chrA\t40\t.\tACGT\tACTT\t.\t.\t.\n"        // MNV sharing AC: span 42-43
      "chrA\t50\t.\tACG\tACT,AGG\t.\t.\t.\n"      // the shorter shared prefix (A): span 51-52
      "chrA\t60\t.\tA\t<DEL>\t.\t.\tEND=65\n"     // symbolic: 60-65
      "chrA\t70\t.\tAC\t.\t.\t.\t.\n"             // no ALT
      "chrA\t80\t.\tAC\tAC\t.\t.\t.\n"            // ALT equal to REF
      "chrA\t90\t.\tACG\tAGG,ACT\t.\t.\t.\n"      // the shorter prefix first: span 91-92 still
      "chrB\t5\t.\tT\tTA\t.\t.\t.\n";
  const std::string header = "##fileformat=VCFv4.2\n##INFO=<ID=END,Number=1,Type=Integer,Description=\"End\">\n"
                             "##contig=<ID=chrA,length=1000>\n##contig=<ID=chrB,length=1000>\n"
                             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
  const std::string plain = dir.write("in.vcf", header + records);
  int status = 0;
  test::run_shell("bgzip -c '" + plain + "' > '" + plain + ".gz' && tabix -p vcf '" + plain + ".gz'", status);
  REQUIRE(status == 0);
  // 1-based inclusive regions, as -r takes them: each edge of each record's spans.
  const std::vector<std::string> regions = {"chrA:10-10", "chrA:20-20", "chrA:21-21", "chrA:23-23", "chrA:24-24",
                                            "chrA:30-30", "chrA:31-31", "chrA:30-31", "chrA:29-30", "chrA:31-40",
                                            "chrA:40-41", "chrA:42-42", "chrA:43-50", "chrA:51-51", "chrA:53-59",
                                            "chrA:62-62", "chrA:66-70", "chrA:71-71", "chrA:70-71", "chrA:81-81",
                                            "chrA:80-81", "chrA:91-91", "chrA:92-93", "chrB:5-6", "chrB:6-6", "chrB:1-5"};
  const char* modes[] = {"pos", "record", "variant"};
  int64_t differ = 0, selected_somewhere = 0;
  for (const std::string& text : regions) {
    const io::Region region = io::parse_region(text);
    const io::RegionCover cover({region});
    for (const char* mode : modes) {
      const std::string expected = test::run_shell("bcftools view -H --regions-overlap " + std::string(mode) +
                                                       " -r " + text + " '" + plain + ".gz' | cut -f1,2,4,5",
                                                   status);
      REQUIRE(status == 0);
      std::string got;
      io::VcfReader r(plain);
      io::BcfRecPtr rec(bcf_init());
      while (r.next(rec.get())) {
        const std::string contig = bcf_seqname(r.header(), rec.get());
        if (!io::regions_select(cover, contig, rec.get(), io::parse_regions_overlap(mode))) continue;
        bcf_unpack(rec.get(), BCF_UN_STR);
        std::string alts;
        for (int i = 1; i < rec->n_allele; ++i) alts += (i > 1 ? "," : "") + std::string(rec->d.allele[i]);
        got += contig + "\t" + std::to_string(rec->pos + 1) + "\t" + rec->d.allele[0] + "\t" +
               (alts.empty() ? "." : alts) + "\n";
      }
      INFO("-r " << text << " --regions-overlap " << mode);
      CHECK(got == expected);
      differ += got != expected;
      selected_somewhere += !got.empty();
    }
  }
  CHECK(differ == 0);
  CHECK(selected_somewhere > 30);  // the table exercises selections, not only empty ones
  CHECK(io::parse_regions_overlap("VARIANT") == io::RegionsOverlap::variant);
  CHECK(io::parse_regions_overlap("2") == io::RegionsOverlap::variant);
  CHECK_THROWS_WITH(io::parse_regions_overlap("3"), Catch::Contains("--regions-overlap 3") &&
                                                        Catch::Contains("variant (2)"));
}
