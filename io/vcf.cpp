#include "io/vcf.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/bgzf_end.h"
#include "io/error.h"
#include "io/temp_files.h"
#include "io/output_file.h"

namespace mambadna::io {

namespace {

// Why htslib refused a text header, where it is a common mistake: "" when not found. Reads
// the file again, so only a regular file is looked at (a FIFO or stdin cannot be re-read).
std::string header_problem(const std::string& path) {
  struct stat st {};
  if (path == "-" || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
  HtsFilePtr fp(hts_open(path.c_str(), "r"));
  if (!fp || hts_get_format(fp.get())->format != vcf) return "";
  kstring_t line = KS_INITIALIZE;
  std::string why;
  int64_t n = 0;
  bool chrom = false;
  int rc = 0;
  while ((rc = hts_getline(fp.get(), '\n', &line)) >= 0) {
    ++n;
    const std::string text(line.s, line.l);
    if (text.rfind("##", 0) == 0) continue;
    chrom = text.rfind("#CHROM", 0) == 0;
    if (!chrom)
      why = ": line " + std::to_string(n) + " should be the #CHROM header line";
    else if (text.find('\t') == std::string::npos)
      why = ": its #CHROM line (line " + std::to_string(n) + ")" +
            (text.find(' ') != std::string::npos ? " is separated by spaces, not tabs"
                                                 : " has no columns after #CHROM (a file cut short?)");
    break;
  }
  if (rc < -1 && why.empty())  // the header's lines could not all be read
    why = ": read error (truncated or corrupt compressed data) after line " + std::to_string(n);
  else if (!chrom && why.empty())
    why = ": there is no #CHROM header line";
  ks_free(&line);
  return why;
}

}  // namespace

VcfReader::VcfReader(const std::string& path, int threads) : path_(path), threads_(threads) {
  fp_.reset(hts_open(path.c_str(), "r"));
  if (!fp_) {
    // htslib sets ENOEXEC for a file it opened but whose format it does not know.
    if (errno == ENOEXEC) throw InputError(path + ": not a VCF or BCF file (htslib does not recognise its format)");
    throw InputError(path + ": cannot open: " + std::strerror(errno));
  }
  if (hts_get_format(fp_.get())->category != variant_data)
    throw InputError(path + ": not a VCF or BCF file");
  if (fp_->is_bgzf) bgzf_check_complete(fp_->fp.bgzf, path);
  if (threads > 0 && hts_set_threads(fp_.get(), threads) != 0)
    throw InputError(path + ": cannot start " + std::to_string(threads) + " decompression threads");
  hdr_.reset(bcf_hdr_read(fp_.get()));
  if (!hdr_) throw InputError(path + ": cannot read the VCF header" + header_problem(path));
}

std::string VcfReader::where() const {
  return "record " + std::to_string(n_) + " (" + contig_ + ":" + std::to_string(pos_ + 1) + ")";
}

// The text of the line in `line` (one VCF record, as read) is checked before htslib parses it:
// the parse puts NULs where it splits FILTER and INFO, so counting columns after it would count
// those too (a 7-column line whose FILTER is "a;b" would pass for 8).
std::string VcfReader::check_text(const kstring_t& line, int64_t record) const {
  const char* t = line.s;
  const size_t l = line.l;
  int64_t columns = 1;
  size_t tab[2] = {l, l};  // the first two tabs
  for (size_t i = 0; i < l; ++i)
    if (t[i] == '\t') {
      if (columns <= 2) tab[columns - 1] = i;
      ++columns;
    }
  const std::string chrom(t, std::min(tab[0], l));
  const size_t from = std::min(tab[0] + 1, l);
  const std::string pos(t + from, t + std::min(tab[1], l));
  const std::string where = "record " + std::to_string(record) + " (" + chrom +
                            (pos.empty() ? "" : ":" + pos) + ")";
  if (columns < 8)
    throw InputError(path_ + ": " + where + " has " + std::to_string(columns) +
                     (columns == 1 ? " column" : " columns") +
                     "; a VCF record has at least 8 (CHROM POS ID REF ALT QUAL FILTER INFO), "
                     "separated by tabs");
  // htslib reads a POS that is no number as 0 (and "5abc" as 5): the text must be digits (0 is
  // a telomere, as the VCF specification allows).
  bool digits = !pos.empty();
  for (char c : pos) digits = digits && c >= '0' && c <= '9';
  if (!digits)
    throw InputError(path_ + ": record " + std::to_string(record) + " (" + chrom + "): POS '" + pos +
                     "' is not a number");
  // An empty fixed column (two tabs in a row): htslib reads an empty ALT as an allele of no
  // bases, which is neither a variant nor the '.' of none.
  static const char* const kColumns[8] = {"CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"};
  size_t begin = 0;
  for (int c = 0; c < 8; ++c) {
    size_t end = begin;
    while (end < l && t[end] != '\t') ++end;
    if (end == begin)
      throw InputError(path_ + ": " + where + ": the " + kColumns[c] +
                       " column is empty (write '.' for a missing value)");
    begin = end + 1;
  }
  return where;
}

bool VcfReader::next(bcf1_t* rec) {
  const bool text = fp_->format.format == vcf;
  // A compressed stream that fails (plain gzip cut short, corrupt data) leaves an empty line
  // and fails again at every read: it is no blank line to read past.
  auto stream_failed = [&] { return fp_->is_bgzf && fp_->fp.bgzf->errcode != 0; };
  bool end = false, bad = false;
  std::string here;  // the text record being parsed, "record N (CHROM:POS)"
  if (text) {
    // Text VCF: the line is read here and parsed by vcf_parse (what bcf_read does for it), so
    // that its text can be checked first. A blank line (as at the end of a hand-edited file) is
    // no record: htslib would read it as one.
    auto blank = [&] {
      for (size_t i = 0; i < fp_->line.l; ++i)
        if (!std::isspace(static_cast<unsigned char>(fp_->line.s[i]))) return false;
      return true;
    };
    int got = 0;
    do got = hts_getline(fp_.get(), '\n', &fp_->line);
    while (got >= 0 && !stream_failed() && blank());
    if (got < -1 && !stream_failed())
      throw InputError(path_ + ": read error after record " + std::to_string(n_));
    end = got == -1;
    if (got >= 0 && !stream_failed()) {
      here = check_text(fp_->line, n_ + 1);
      bad = vcf_parse(&fp_->line, hdr_.get(), rec) != 0;
    }
  } else {
    const int ret = bcf_read(fp_.get(), hdr_.get(), rec);
    end = ret == -1;
    bad = ret < -1;
  }
  if (stream_failed())
    throw InputError(path_ + ": read error (truncated or corrupt compressed data) after record " +
                     std::to_string(n_));
  if (!end && (bad || (rec->errcode & ~(BCF_ERR_CTG_UNDEF | BCF_ERR_TAG_UNDEF)))) {
    // htslib's reason, where it sets one (its [E::...] line, before this one, has the detail).
    std::string why;
    const std::pair<int, const char*> kReasons[] = {
        {BCF_ERR_NCOLS, "its sample columns do not match the header's samples"},
        {BCF_ERR_LIMITS, "a value past htslib's limits"},
        {BCF_ERR_CHAR, "an invalid character"},
        {BCF_ERR_CTG_INVALID, "an invalid contig name"},
        {BCF_ERR_TAG_INVALID, "a tag htslib cannot declare (an invalid name, or a FORMAT of '.')"}};
    for (const auto& [bit, text_of] : kReasons)
      if (rec->errcode & bit) why += std::string(why.empty() ? ": " : "; ") + text_of;
    if (!here.empty()) throw InputError(path_ + ": " + here + " is malformed" + why);
    throw InputError(path_ + ": malformed record after " + (n_ > 0 ? where() : std::string("the header")) + why);
  }
  if (end) {
    // htslib ends a compressed stream that breaks off as if at its end (io/bgzf_end.h).
    if (fp_->is_bgzf)
      bgzf_check_ended(fp_->fp.bgzf, threads_, path_, " after record " + std::to_string(n_));
    return false;
  }
  ++n_;
  bcf_unpack(rec, BCF_UN_STR);
  const std::string contig = bcf_seqname(hdr_.get(), rec);
  const int64_t p = rec->pos;
  if (text) {
    // A line that stops after INFO where the header names samples (a file cut short): htslib
    // reads it with no samples, then refuses to write it back (an error naming the output).
    const int samples = bcf_hdr_nsamples(hdr_.get());
    if (samples > 0 && int(rec->n_sample) != samples) {
      contig_ = contig, pos_ = p;
      throw InputError(path_ + ": " + where() + " has " +
                       (rec->n_sample ? std::to_string(rec->n_sample) + " of the " : "none of the ") +
                       std::to_string(samples) + " sample columns its header names (FORMAT, then " +
                       "one a sample, after INFO)");
    }
  }
  if (rec->n_allele < 1) {
    contig_ = contig, pos_ = p;
    throw InputError(path_ + ": " + where() + " has no REF allele");
  }
  if (contig != contig_) {
    if (done_.count(contig)) {
      contig_ = contig, pos_ = p;
      throw InputError(path_ + ": " + where() + ": contig '" + contig +
                       "' appears again after other contigs; the input must be sorted (run "
                       "'bcftools sort')");
    }
    if (!contig_.empty()) done_.insert(contig_);
    contig_ = contig;
    pos_ = -1;
  }
  if (p < pos_) {
    const int64_t before = pos_;
    pos_ = p;
    throw InputError(path_ + ": " + where() + " comes after position " + std::to_string(before + 1) +
                     "; the input must be sorted (run 'bcftools sort')");
  }
  pos_ = p;
  return true;
}

char vcf_output_type(const std::string& path, char requested) {
  if (requested) {
    if (!std::strchr("vzbu", requested))
      throw UsageError(std::string("--output-type ") + requested + ": choose v, z, b or u");
    return requested;
  }
  if (bgzip_name(path)) return 'z';  // in any case: .VCF.GZ
  return has_suffix(path, ".bcf") ? 'b' : 'v';
}

char parse_vcf_output_type(const std::string& arg, int* level) {
  *level = -1;
  const bool digit = arg.size() == 2 && arg[1] >= '0' && arg[1] <= '9';
  if (arg.empty() || arg.size() > 2 || (arg.size() == 2 && !digit) || !std::strchr("vzbu", arg[0]))
    throw UsageError("-O " + arg + ": choose v, z, b or u (z and b may take a compression level: z0 to z9)");
  if (digit && (arg[0] == 'v' || arg[0] == 'u'))
    throw UsageError("-O " + arg + ": " + (arg[0] == 'v' ? "v is uncompressed VCF" : "u is uncompressed BCF") +
                     ": a compression level goes with z or b");
  if (digit) *level = arg[1] - '0';
  return arg[0];
}

std::pair<int64_t, int64_t> variant_span(bcf1_t* rec) {
  int64_t off = rec->n_allele > 0 ? rec->rlen : 0;
  if (rec->n_allele > 1) {
    bcf_unpack(rec, BCF_UN_STR);
    const char* ref = rec->d.allele[0];
    for (int i = 1; i < rec->n_allele && off > 0; ++i) {
      const char* alt = rec->d.allele[i];
      int64_t j = 0;
      while (ref[j] && alt[j] && ref[j] == alt[j]) ++j;
      off = std::min(off, j);
    }
  }
  return {rec->pos + off, rec->pos + std::max<int64_t>(off, rec->rlen)};
}

bool regions_select(const RegionCover& cover, const std::string& contig, bcf1_t* rec, RegionsOverlap overlap) {
  switch (overlap) {
    case RegionsOverlap::pos: return cover.contains(contig, rec->pos);
    case RegionsOverlap::record: return cover.overlaps(contig, rec->pos, rec->pos + rec->rlen);
    case RegionsOverlap::variant: {
      const auto [begin, end] = variant_span(rec);
      if (begin < end) return cover.overlaps(contig, begin, end);
      return cover.contains(contig, begin - 1) && cover.contains(contig, begin);  // an insertion: both sides
    }
  }
  return false;
}

void vcf_header_append(bcf_hdr_t* hdr, const std::string& line) {
  if (bcf_hdr_append(hdr, line.c_str()) != 0) throw Error("cannot add the header line " + line);
}

VcfWriter::VcfWriter(const std::string& path, char type, bcf_hdr_t* hdr, int threads, int level)
    : path_(path), bcf_(type == 'b' || type == 'u'), hdr_(hdr) {
  std::error_code ec;
  if (path != "-" && std::filesystem::is_directory(path, ec))
    throw InputError(path + ": cannot write a " + (bcf_ ? "BCF" : "VCF") + " file: is a directory");
  const bool in_place = path == "-" || is_special_file(path);
  if (bcf_hdr_sync(hdr) != 0) throw Error("cannot update the VCF header");
  if (!in_place) {
    tmp_ = create_temp_file(path);  // new, ours alone
    if (tmp_.empty()) throw InputError(path + ": cannot create file: " + std::strerror(errno));
  }
  std::string mode = type == 'z' ? "wz" : type == 'b' ? "wb" : type == 'u' ? "wbu" : "w";
  if (level >= 0 && (type == 'z' || type == 'b')) mode += char('0' + level);
  try {
    errno = 0;
    fp_.reset(hts_open(in_place ? path.c_str() : tmp_.c_str(), mode.c_str()));
    if (!fp_) throw InputError(path + ": cannot create file" + (errno ? std::string(": ") + std::strerror(errno) : ""));
    if (threads > 0 && hts_set_threads(fp_.get(), threads) != 0)
      throw InputError(path + ": cannot start " + std::to_string(threads) + " compression threads");
    if (bcf_hdr_write(fp_.get(), hdr) != 0) throw InputError(path + ": cannot write the header");
  } catch (...) {
    fp_.reset();
    if (!tmp_.empty()) std::remove(tmp_.c_str()), temp_file_closed(tmp_);
    throw;
  }
  // htslib appends the contigs and tags it meets later after these.
  contigs_written_ = hdr->n[BCF_DT_CTG];
  ids_written_ = hdr->n[BCF_DT_ID];
}

VcfWriter::~VcfWriter() {
  fp_.reset();
  if (!tmp_.empty()) std::remove(tmp_.c_str()), temp_file_closed(tmp_);
}

void VcfWriter::write(bcf1_t* rec) {
  // A BCF record names its contig by index into the header written at the start; a contig
  // htslib added to the header later (undeclared in the input) would point past it.
  if (bcf_ && (rec->rid < 0 || rec->rid >= contigs_written_))
    throw InputError(path_ + ": contig '" + bcf_seqname_safe(hdr_, rec) +
                     "' is declared neither in the VCF header nor in the FASTA; BCF output needs "
                     "it declared (add a ##contig line, or write VCF with -O v or -O z)");
  // BCF holds positions in 32 bits (htslib 1.16 writes a larger one cut to 32 bits, silently).
  if (bcf_ && (rec->pos > INT32_MAX || rec->rlen > INT32_MAX || rec->pos + rec->rlen > INT32_MAX))
    throw InputError(path_ + ": " + bcf_seqname_safe(hdr_, rec) + ":" + std::to_string(rec->pos + 1) +
                     ": a position past 2^31 - 1 cannot be written in BCF (32-bit); write VCF with "
                     "-O v or -O z");
  if (bcf_) {  // likewise FILTER, INFO and FORMAT ids
    bcf_unpack(rec, BCF_UN_ALL);
    auto undeclared = [&](int id) {
      if (id >= 0 && id < ids_written_) return;
      const char* name = id >= 0 && id < hdr_->n[BCF_DT_ID] ? hdr_->id[BCF_DT_ID][id].key : "?";
      throw InputError(path_ + ": the tag '" + name + "' is not declared in the VCF header; BCF "
                       "output needs it declared (add its ##INFO/##FORMAT/##FILTER line, or "
                       "write VCF with -O v or -O z)");
    };
    for (int i = 0; i < rec->d.n_flt; ++i) undeclared(rec->d.flt[i]);
    for (int i = 0; i < rec->n_info; ++i) undeclared(rec->d.info[i].key);
    for (int i = 0; i < rec->n_fmt; ++i) undeclared(rec->d.fmt[i].id);
  }
  if (bcf_write(fp_.get(), hdr_, rec) != 0)
    throw InputError((path_ == "-" ? std::string("standard output") : path_) + ": write failed: " + std::strerror(errno));
}

void VcfWriter::finish() {
  if (!fp_) return;  // finished
  errno = 0;
  const int rc = hts_close(fp_.release());
  if (rc != 0)
    throw InputError((path_ == "-" ? std::string("standard output") : path_) + ": write failed" +
                     (errno ? ": " + std::string(std::strerror(errno)) : std::string()));
}

void VcfWriter::commit() {
  finish();
  if (!tmp_.empty()) {
    if (!rename_temp_file(tmp_, path_))
      throw InputError(path_ + ": cannot rename the temporary file into place: " + std::strerror(errno));
    tmp_.clear();
  }
}

}  // namespace mambadna::io
