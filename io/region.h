// Genomic regions: the htslib text syntax ("chr1:1,000-2k", 1-based inclusive) and BED files
// (0-based half-open), both turned into one 0-based half-open Region.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mambadna::io {

// `Region::end` value meaning "up to the end of the contig".
inline constexpr int64_t kContigEnd = std::numeric_limits<int64_t>::max();

// [begin, end) on `contig`, 0-based half-open.
struct Region {
  std::string contig;
  int64_t begin = 0;
  int64_t end = kContigEnd;  // kContigEnd: to the end of the contig
  std::string name;          // BED column 4 when present, else empty
  char strand = '.';         // BED column 6 when present: '+', '-' or '.'
  int64_t line = 0;          // the BED line it came from (1-based); 0 for -r (for messages)
  int64_t index = -1;        // its place in the list given (-r in order, then -R's regions), from 0
  // -r text with a ':' and no braces, split at its last ':' into contig and positions, which
  // could also be one contig's whole name ("HLA-A*01:01:01"): regions_present reads it as that
  // contig where an input has one of that name (as htslib does, against each input's names).
  std::string whole{};

  int64_t length() const { return end - begin; }  // meaningless when end == kContigEnd
  // The same region wherever it was written down (its BED line and -r text are not part of it).
  friend bool operator==(const Region& a, const Region& b) {
    return a.contig == b.contig && a.begin == b.begin && a.end == b.end && a.name == b.name &&
           a.strand == b.strand;
  }
};

// Parses samtools' region syntax, 1-based inclusive: "chr1", "chr1:100" (100 to the end),
// "chr1:100-200", "chr1:-200" (1 to 200), "chr1:1,000-2k" (thousands separators and k/M/G
// suffixes), "{name:with:colons}:1-10" (braces quote a contig name that contains ':').
// A name with ':' and no braces is split at its last ':', and the text kept in Region::whole:
// regions_present reads it as a whole contig name where the input has that contig (and refuses
// it as ambiguous where the input has both), as htslib does. Throws UsageError for empty text,
// unparsable coordinates, a zero start or a start after the end.
Region parse_region(const std::string& text);

// The region as samtools would write it: "chr1:100-200", "{a:b}:1-10" (a name with ':' or ','
// in braces), or "chr1" for a whole contig.
std::string format_region(const Region& region);

// What outputs call a region: its BED name (column 4) when it has one, else "contig:start-end"
// of its interval [begin, end) clipped to the contig, 1-based inclusive, as format_region
// writes it ("{x:1-5}:1-300" for a contig whose name holds ':' or ',').
std::string region_name(const Region& region, int64_t begin, int64_t end);

// The region clipped to a contig of `length` bases, as samtools faidx clips it: its end to the
// length, its start to its end (a region that starts past the end becomes empty there).
inline void clip_to_contig(Region& region, int64_t length) {
  if (region.end > length) region.end = length;
  if (region.begin > region.end) region.begin = region.end;
}

// The region for messages: format_region, and its BED line when it has one
// ("chrY:1-1000 (BED line 7)").
std::string describe_region(const Region& region);

// Why regions_present skipped a region for an input: its contig is not there, or the region
// (not empty) starts past the contig's end (another assembly's coordinates?).
enum class RegionSkip { absent_contig, past_end };

// An input's regions skipped for one reason, reported by regions_present (the app warns; io
// does not print): the input's path, those regions in order, and the reason.
using RegionsSkipped =
    std::function<void(const std::string& path, const std::vector<Region>& skipped, RegionSkip why)>;

// The length of `contig` in an input, or -1 where the input lacks it.
using ContigLength = std::function<int64_t(const std::string& contig)>;

// The regions of `regions` that the input at `path` has, in order: on a contig it has, and not
// starting past its end (an empty interval at the end is kept). A region whose -r text is also
// the whole name of one of the input's contigs (Region::whole) comes back as that contig, whole;
// where the input also has the contig before the text's last ':', UsageError (ambiguous: write
// {NAME} for the contig, {NAME}:BEG-END for a range). The others are skipped, as
// samtools view skips a region on an unknown reference and samtools faidx one past a contig's
// end, and given to `on_skipped` (when set), once for each reason. Throws InputError naming
// `path`, the first region and why when none is left (most often another assembly's names:
// "chr1" against "1", or its coordinates), unless `none_ok` (other inputs of the run may hold
// them: one FASTA a chromosome): then it returns none.
std::vector<Region> regions_present(const std::string& path, const std::vector<Region>& regions,
                                    const ContigLength& contig_length, const RegionsSkipped& on_skipped,
                                    bool none_ok = false);

// Reads a BED file (plain or gzip/bgzip): columns chrom, start, end (0-based half-open), an
// optional name ('.' for none) and (column 6) an optional strand, '+', '-' or '.'. Skips blank lines and lines starting with '#', "track" or "browser". Columns are
// tab-separated (whitespace-separated when a line has no tab). Throws InputError naming the file
// and the 1-based line for fewer than 3 columns, non-numeric or negative coordinates, start > end,
// or a strand other than those three; and for a file with no region at all (an empty region list
// would mean the whole input to a reader).
std::vector<Region> read_bed(const std::string& path);

// Which records a region list selects, as bcftools' --regions-overlap (htslib's
// BCF_SR_REGIONS_OVERLAP): pos (0), POS in a region; record (1), the REF span (POS to POS + rlen,
// rlen from INFO/END where there is one) meets one; variant (2), the span without the bases every
// ALT shares with REF at its start (a left-anchored indel's padding base), io::variant_span.
enum class RegionsOverlap { pos, record, variant };

// bcftools' spellings: pos, record, variant (any case) or 0, 1, 2; throws UsageError naming the
// option.
RegionsOverlap parse_regions_overlap(const std::string& arg);

// The positions some region of a list covers, to ask of one position at a time (vep's records):
// per contig, the regions merged into sorted disjoint intervals, searched by bisection.
class RegionCover {
 public:
  explicit RegionCover(const std::vector<Region>& regions);
  bool contains(const std::string& contig, int64_t pos) const;  // pos 0-based
  // Whether some region meets [begin, end) (0-based); an empty span asks for `begin` alone.
  bool overlaps(const std::string& contig, int64_t begin, int64_t end) const;

 private:
  std::unordered_map<std::string, std::vector<std::pair<int64_t, int64_t>>> by_contig_;  // [begin, end)
};

}  // namespace mambadna::io
