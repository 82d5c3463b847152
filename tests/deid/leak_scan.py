"""Canary scanner (DEID-POLICY.md leak-test design, T2/T3).

Usage: leak_scan.py CANARIES_JSON PROFILE [--root DIR ...] [--text FILE ...]

Searches every path component under each --root, every file's bytes
(gunzipped, all gzip members; base64 runs decoded; UTF-16 decoded), NIfTI
headers, JSON sidecars and the --text files (captured stdout/stderr) for
every canary in the encodings of T2: raw, case-folded, accent-folded,
separators changed, date and time layouts, UIDs with separators replaced
or removed and their tail fragments, and unkeyed hashes (MD5/SHA-1/SHA-256
hex, truncated, and CTP's decimal MD5). It also checks the containers:
gzip FLG/MTIME, NIfTI text fields and descrip grammar, the extension flag,
sidecar keys against the profile's allow-list (written here from the
policy table, independently of the converter), and file mtimes.

A canary may appear only at its allowed sidecar keys. Exit 0 with no
finding, 1 with findings (each printed), 2 on usage errors.
Run with Debian's /usr/bin/python3.
"""
import base64
import datetime
import gzip
import hashlib
import json
import os
import re
import struct
import sys
import unicodedata
import zlib

TOKEN_RE = re.compile(rb"q7[a-z2-7]{6}")
TOKEN16_RE = re.compile(rb"q\x007\x00(?:[a-z2-7]\x00){6}")
HEX_RE = re.compile(rb"[0-9a-f]{8,}")
NUM_RE = re.compile(rb"\d+(?:[._]\d+)*")
B64_RE = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")
DESCRIP_RE = re.compile(r"^(TE=[0-9.]+)?(;phase=[01])?(;mb=[0-9]+)?$")

# sidecar allow-list per profile (DEID-POLICY P1), with value checks
TEXT, NUM, INT, LIST = "text", "num", "int", "list"
RESEARCH_KEYS = {
    "Modality": TEXT, "Manufacturer": TEXT, "ManufacturersModelName": TEXT, "SoftwareVersions": TEXT,
    "ReceiveCoilName": TEXT, "BodyPartExamined": TEXT, "MagneticFieldStrength": NUM, "ImagingFrequency": NUM,
    "SequenceName": TEXT, "PulseSequenceName": TEXT, "ScanningSequence": LIST, "SequenceVariant": LIST,
    "ScanOptions": LIST, "ImageType": LIST, "MRAcquisitionType": TEXT, "InPlanePhaseEncodingDirectionDICOM": TEXT,
    "ConvolutionKernel": TEXT, "EchoTime": NUM, "RepetitionTime": NUM, "InversionTime": NUM, "FlipAngle": NUM,
    "PixelBandwidth": NUM, "SliceThickness": NUM, "SpacingBetweenSlices": NUM, "PercentPhaseFOV": NUM,
    "ParallelReductionFactorInPlane": NUM, "KVP": NUM, "SeriesNumber": INT, "AcquisitionNumber": INT,
    "EchoNumber": INT, "TaskName": TEXT, "SeriesDescription": TEXT, "ProtocolName": TEXT,
    "PatientAge": NUM, "PatientSex": re.compile(r"^[MFO]$"),
    "InstitutionName": re.compile(r"^site-[0-9a-f]{8}$"),
    "StationName": re.compile(r"^scanner-[0-9a-f]{8}$"), "DeviceSerialNumber": re.compile(r"^scanner-[0-9a-f]{8}$"),
    "AcquisitionDateTime": re.compile(r"^(1[0-8]\d\d|19[01]\d|192[0-5])-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$"),
    "AcquisitionTime": re.compile(r"^\d\d:\d\d:\d\d\.\d{6}$"),
    "BurnedInAnnotation": re.compile(r"^(YES|NO)$"), "RecognizableVisualFeatures": re.compile(r"^(YES|NO)$"),
    "BurnedInTextRisk": re.compile(r"^[a-z_]+$"), "FaceAltered": TEXT, "ConversionWarnings": LIST,
    "ConversionSoftware": re.compile(r"^rapidnii$"), "ConversionSoftwareVersion": re.compile(r"^[0-9.]+$"),
    "DeidentificationMethod": TEXT, "DeidentificationMethodCodeSequence": "codes",
    "ComplexPart": re.compile(r"^(mag|phase|real|imag)$"), "GantryTiltCorrected": "bool",
    "PhaseEncodingDirection": re.compile(r"^[ijk]-?$"), "PhaseEncodingAxis": re.compile(r"^[ijk]$"),
    "SliceEncodingDirection": re.compile(r"^[ijk]-?$"), "BandwidthPerPixelPhaseEncode": NUM,
    "EffectiveEchoSpacing": NUM, "TotalReadoutTime": NUM, "SliceTiming": "numlist",
    "ImageOrientationPatientDICOM": "numlist", "FrameDuration": "numlist", "FrameTimesStart": "numlist",
    "PhilipsRescaleSlope": NUM, "PhilipsRescaleIntercept": NUM, "PhilipsScaleSlope": NUM,
    "UsePhilipsFloatNotDisplayScaling": INT,
    "Units": re.compile(r"^[A-Z0-9_]{1,16}$"), "DecayCorrection": re.compile(r"^[A-Z0-9_]{1,16}$"),
}
STRICT_DROP = {"PatientAge", "PatientSex", "InstitutionName", "StationName", "DeviceSerialNumber",
               "AcquisitionDateTime", "AcquisitionTime"}
DATASET_KEYS = {"Name", "BIDSVersion", "DatasetType", "GeneratedBy"}
CLEAN_CHARS = re.compile(r"^[A-Za-z0-9 _+\-.()]*$")


def fold(b):
    """bytes -> lower-case ASCII with accents removed (NFKD)."""
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        s = b.decode("latin-1")
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return s.lower().encode("ascii", "ignore")


def date_layouts(d):
    y, m, dd = d[:4], d[4:6], d[6:8]
    out = {d, "%s-%s-%s" % (y, m, dd), "%s/%s/%s" % (y, m, dd), "%s.%s.%s" % (y, m, dd), "%s/%s/%s" % (m, dd, y),
           "%s.%s.%s" % (dd, m, y)}
    try:
        dt = datetime.date(int(y), int(m), int(dd))
        epoch = (dt - datetime.date(1970, 1, 1)).days * 86400
        out.add("%d" % epoch)  # epoch seconds
        out.add("%.6g" % float(d + "000000"))  # dcm2niix-style %g of YYYYMMDDhhmmss
        out.add("%s-%03d" % (y, dt.timetuple().tm_yday))  # day of year
    except ValueError:
        pass
    return out


def short_date_layouts(d):
    """low-entropy layouts: searched as whole numbers in text only"""
    y, m, dd = d[:4], d[4:6], d[6:8]
    out = {y[2:] + m + dd}
    try:
        dt = datetime.date(int(y), int(m), int(dd))
        out.add("%d" % (dt - datetime.date(1899, 12, 30)).days)  # Excel serial
        out.add("%d" % (dt.toordinal() + 1721424.5 + 0.5))  # Julian day number
    except ValueError:
        pass
    return out


def time_layouts(t):
    hh, mm, ss = t[:2], t[2:4], t[4:6]
    frac = t[6:] if len(t) > 6 else ""
    secs = int(hh) * 3600 + int(mm) * 60 + int(ss) + (float(frac) if frac else 0.0)
    strings = {"%s:%s:%s" % (hh, mm, ss), "%s:%s:%d." % (hh, mm, int(ss))}
    numbers = {hh + mm + ss, "%d" % int(secs), "%d" % int(round(secs * 1000))}
    if frac:
        numbers.add(hh + mm + ss + frac)
        numbers.add(("%.6f" % secs).rstrip("0").rstrip("."))
    return strings, numbers


def hashes(v):
    b = v.encode()
    out = set()
    for h in (hashlib.md5(b).hexdigest(), hashlib.sha1(b).hexdigest(), hashlib.sha256(b).hexdigest()):
        out.add(h)
        for n in (8, 10, 12, 16):
            out.add(h[:n])
    return out


class Needles:
    def __init__(self, canaries):
        self.tokens = {}  # token(lower) -> canary
        self.strings = []  # (bytes needle lower, canary)
        self.numbers = {}  # whole-number needle -> canary (text only)
        self.hex = {}  # hex hash needle -> canary
        self.decimal_md5 = {}
        self.uids = {}  # normalised digits/dots -> canary
        for c in canaries:
            v = c["value"]
            k = c["kind"]
            if k in ("text", "name"):
                if re.fullmatch(r"Q7[A-Z2-7]{6}", v):
                    self.tokens[v.lower().encode()] = c
                else:
                    folded = fold(v.encode("utf-8"))
                    self.strings.append((folded, c))
                    for h in hashes(v) | hashes(v.upper()) | hashes(v.lower()):
                        self.hex[h.encode()] = c
                for h in hashes(v):
                    self.hex[h.encode()] = c
                self.decimal_md5[str(int(hashlib.md5(v.encode()).hexdigest(), 16)).encode()] = c
            elif k == "date":
                for s in date_layouts(v):
                    self.strings.append((s.encode(), c))
                for s in short_date_layouts(v):
                    self.numbers[s.encode()] = c
            elif k == "time":
                strings, numbers = time_layouts(v)
                for s in strings:
                    self.strings.append((s.encode(), c))
                for s in numbers:
                    self.numbers[s.encode()] = c
            elif k == "uid":
                self.uids[v.encode()] = c
                self.uids[v.replace(".", "").encode()] = c
                parts = v.split(".")
                longest = max(parts, key=len)
                if len(longest) >= 12:
                    self.uids[longest.encode()] = c  # tail/serial fragment
                for h in hashes(v):
                    self.hex[h.encode()] = c
                self.decimal_md5[str(int(hashlib.md5(v.encode()).hexdigest(), 16)).encode()] = c
            elif k == "number":
                self.numbers[v.encode()] = c
        # wide hashes of PN renderings
        self.check_substrings()

    def check_substrings(self):
        toks = list(self.tokens)
        for i, a in enumerate(toks):
            for b in toks[i + 1:]:
                if a in b or b in a:
                    print("WARNING: canary %s is inside %s" % (a, b))

    def find(self, hay, where, text_mode, allowed_for=None):
        """hay: bytes (lower-cased by the caller). Returns [(canary, why)]."""
        hits = []

        def hit(c, why):
            if allowed_for is not None and allowed_for(c):
                return
            hits.append((c, "%s: %s" % (where, why)))

        for m in TOKEN_RE.finditer(hay):
            c = self.tokens.get(m.group())
            if c:
                hit(c, "token %s" % m.group().decode())
        for m in TOKEN16_RE.finditer(hay):
            t = m.group().replace(b"\x00", b"")
            c = self.tokens.get(t)
            if c:
                hit(c, "UTF-16 token %s" % t.decode())
        for needle, c in self.strings:
            if needle and needle in hay:
                hit(c, "string %r" % needle)
        for m in NUM_RE.finditer(hay):
            s = m.group()
            norm = s.replace(b"_", b".")
            for cand in {norm, norm.replace(b".", b"")}:
                if cand in self.uids:
                    hit(self.uids[cand], "UID %r" % s)
            for part in re.split(rb"[._]", s):
                if part in self.uids:
                    hit(self.uids[part], "UID fragment %r" % part)
            if s in self.decimal_md5:
                hit(self.decimal_md5[s], "decimal MD5")
            if text_mode:
                # numbers under 4 digits are too common to be evidence
                if s in self.numbers and len(s.replace(b".", b"")) >= 4:
                    hit(self.numbers[s], "number %r" % s)
                for part in re.split(rb"[._]", s):
                    if part in self.numbers and len(part) >= 4:
                        hit(self.numbers[part], "number part %r" % part)
        if text_mode:
            for m in HEX_RE.finditer(hay):
                run = m.group()
                for n in (8, 10, 12, 16, 32, 40, 64):
                    for i in range(0, len(run) - n + 1):
                        c = self.hex.get(run[i:i + n])
                        if c:
                            hit(c, "unkeyed hash %r" % run[i:i + n])
        return hits


def gunzip_members(data, where, problems):
    out = b""
    rest = data
    while rest[:2] == b"\x1f\x8b":
        flg = rest[3]
        mtime = struct.unpack("<I", rest[4:8])[0]
        if flg & 0x1C:
            problems.append("%s: gzip header carries FEXTRA/FNAME/FCOMMENT (FLG=%#x)" % (where, flg))
        if mtime != 0:
            problems.append("%s: gzip MTIME is %d, not 0" % (where, mtime))
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += d.decompress(rest)
        rest = d.unused_data
    return out


def nifti_checks(data, where, problems):
    """Returns (header_bytes, voxel_bytes) or (None, None)."""
    if len(data) < 352:
        return None, None
    size = struct.unpack("<i", data[:4])[0]
    if size == 348:
        fields = {"data_type": (4, 10), "db_name": (14, 18), "descrip": (148, 80), "aux_file": (228, 24),
                  "intent_name": (328, 16)}
        vox = int(struct.unpack("<f", data[108:112])[0])
        ext = data[348]
    elif size == 540:
        fields = {"descrip": (240, 80), "aux_file": (320, 24), "intent_name": (508, 16), "unused_str": (525, 15)}
        vox = struct.unpack("<q", data[168:176])[0]
        ext = data[540]
    else:
        return None, None
    for name, (off, n) in fields.items():
        raw = data[off:off + n].split(b"\0")[0]
        if name == "descrip":
            if not DESCRIP_RE.match(raw.decode("latin-1")):
                problems.append("%s: descrip %r breaks the grammar" % (where, raw))
        elif raw.strip(b"\0 "):
            problems.append("%s: NIfTI %s is not empty (%r)" % (where, name, raw))
    if ext != 0:
        problems.append("%s: NIfTI extension flag set" % where)
    return data[:vox], data[vox:]


def check_sidecar(obj, where, profile, problems):
    if not isinstance(obj, dict):
        problems.append("%s: JSON is not an object" % where)
        return
    if set(obj) <= DATASET_KEYS | {"Authors", "License"} and "BIDSVersion" in obj:
        return
    allowed = dict(RESEARCH_KEYS)
    if profile == "strict":
        for k in STRICT_DROP:
            allowed.pop(k, None)
    for k, v in obj.items():
        rule = allowed.get(k)
        if rule is None:
            problems.append("%s: sidecar key %r is not on the %s allow-list" % (where, k, profile))
            continue
        ok = True
        if rule == TEXT:
            ok = isinstance(v, str) and (k.startswith("Deidentification") or k == "FaceAltered" or
                                         CLEAN_CHARS.match(v) is not None)
        elif rule == NUM:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif rule == INT:
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif rule == LIST:
            ok = isinstance(v, list) and all(isinstance(x, str) and CLEAN_CHARS.match(x) for x in v)
        elif rule == "bool":
            ok = isinstance(v, bool)
        elif rule == "numlist":
            ok = isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        elif rule == "codes":
            ok = isinstance(v, list) and all(isinstance(x, dict) and re.fullmatch(r"1131\d\d", x.get("CodeValue", ""))
                                             for x in v)
        elif hasattr(rule, "match"):
            ok = isinstance(v, str) and rule.match(v) is not None
        if not ok:
            problems.append("%s: sidecar value of %r has the wrong type or form: %r" % (where, k, v))
        if k == "PatientAge" and ok and v > 90:
            problems.append("%s: PatientAge above 90" % where)


def scan(canaries, profile, roots, texts):
    needles = Needles(canaries)
    findings = []
    problems = []
    canary_dates = []
    for c in canaries:
        if c["kind"] == "date":
            try:
                canary_dates.append(datetime.date(int(c["value"][:4]), int(c["value"][4:6]), int(c["value"][6:8])))
            except ValueError:
                pass

    def add(hits):
        findings.extend(hits)

    def allowed_fn(keys_present):
        return lambda c: bool(set(c.get("allowed_keys", [])) & keys_present) and profile != "strict"

    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                b = name.encode("utf-8", "surrogateescape")
                for variant in {b.lower(), fold(b), re.sub(rb"[^a-z0-9]", b"", fold(b))}:
                    add(needles.find(variant, "path %s" % rel, True))
            for name in filenames:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                st = os.stat(path)
                mt = datetime.date.fromtimestamp(st.st_mtime)
                for d in canary_dates:
                    if abs((mt - d).days) <= 1:
                        problems.append("%s: mtime within a day of a canary date" % rel)
                data = open(path, "rb").read()
                if data[:2] == b"\x1f\x8b":
                    data = gunzip_members(data, rel, problems)
                head, vox = nifti_checks(data, rel, problems)
                if head is not None:
                    add(needles.find(head.lower(), rel + " (NIfTI header)", True))
                    add(needles.find(vox.lower(), rel + " (NIfTI voxels)", False))
                    continue
                keys_present = set()
                text = data
                if name.endswith(".json"):
                    try:
                        obj = json.loads(data)
                        check_sidecar(obj, rel, profile, problems)
                        if isinstance(obj, dict):
                            keys_present = set(obj)
                            # scan allowed keys separately: they may hold only their own canaries
                            for key in list(obj):
                                if key in ("AcquisitionTime", "AcquisitionDateTime", "PatientAge", "PatientSex"):
                                    add(needles.find(json.dumps(obj[key]).lower().encode(), rel + " [%s]" % key,
                                                     True, allowed_fn({key})))
                                    del obj[key]
                            text = json.dumps(obj, ensure_ascii=False).encode("utf-8")
                    except ValueError:
                        problems.append("%s: not valid JSON" % rel)
                hay = text.lower()
                add(needles.find(hay, rel, True))
                add(needles.find(fold(text), rel + " (folded)", True))
                for m in B64_RE.finditer(text):
                    try:
                        dec = base64.b64decode(m.group() + b"=" * (-len(m.group()) % 4))
                        add(needles.find(dec.lower(), rel + " (base64)", True))
                    except Exception:
                        pass
                for enc in ("utf-16-le", "utf-16-be"):
                    dec = text.decode(enc, errors="ignore").encode("ascii", "ignore")
                    if dec:
                        add(needles.find(dec.lower(), rel + " (%s)" % enc, True))
    for t in texts:
        data = open(t, "rb").read()
        add(needles.find(data.lower(), "log %s" % os.path.basename(t), True))
        add(needles.find(fold(data), "log %s (folded)" % os.path.basename(t), True))
    return findings, problems


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__)
        return 2
    canaries = json.load(open(args[0]))["canaries"]
    profile = args[1]
    roots, texts = [], []
    i = 2
    while i < len(args):
        if args[i] == "--root":
            roots.append(args[i + 1])
        elif args[i] == "--text":
            texts.append(args[i + 1])
        else:
            print("unknown argument %s" % args[i])
            return 2
        i += 2
    findings, problems = scan(canaries, profile, roots, texts)
    seen = set()
    for c, why in findings:
        key = (c["field"], why)
        if key in seen:
            continue
        seen.add(key)
        print("LEAK %-40s %s" % (c["field"], why))
    for p in problems:
        print("PROBLEM %s" % p)
    print("leak scan: %d canaries, %d leaks, %d container problems" % (len(canaries), len(seen), len(problems)))
    return 1 if findings or problems else 0


if __name__ == "__main__":
    sys.exit(main())
