"""Writes the canary archive of DEID-POLICY.md (leak-test design T1).

Usage: gen_canary_archive.py ARCHIVE_DIR CANARIES_JSON [--small]

Every attribute of DICOM PS3.15 Table E.1-1 that this generator can write
carries a unique canary (top level and inside sequences), as do private
elements (a Siemens CSA block, GE and Philips private creators), overlays,
free-text descriptors, a DICOMDIR, non-DICOM files, and the folder and file
names. Three subjects (one with two PatientIDs from different issuers, one
aged over 90, one infant), two sessions each with known day gaps, several
character sets and transfer syntaxes, a burned-in set that must not be
converted, and a positive-utility set whose physics must survive.

canaries.json lists every canary: its value, kind (text, name, date, time,
datetime, uid, number, age, sex) and the sidecar keys where the default
profile may legitimately show it (e.g. sex at PatientSex).
Run with Debian's /usr/bin/python3 (python3-pydicom, numpy).
"""
import copy
import datetime
import json
import os
import random
import struct
import sys

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian)

RNG = random.Random(20260923)
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
CANARIES = []
USED = set()


def token():
    while True:
        t = "Q7" + "".join(RNG.choice(B32) for _ in range(6))
        if t not in USED and not any(t in u or u in t for u in USED):
            USED.add(t)
            return t


def canary(kind, value, field, allowed=()):
    CANARIES.append({"kind": kind, "value": value, "field": field, "allowed_keys": list(allowed)})
    return value


DATE_POOL = set()


def fresh_date():
    # valid, distinctive dates between 1930 and 2024, all distinct
    while True:
        y = RNG.randint(1931, 2023)
        m = RNG.randint(1, 12)
        d = RNG.randint(1, 28)
        s = "%04d%02d%02d" % (y, m, d)
        if s not in DATE_POOL:
            DATE_POOL.add(s)
            return s


TIME_POOL = set()


def fresh_time(low_seconds):
    while True:
        h = RNG.randint(1, 23)  # not within the first hour: seconds since midnight stay distinctive
        mi = RNG.randint(0, 59)
        s = RNG.randint(1, 9) if low_seconds else RNG.randint(11, 59)
        t = "%02d%02d%02d.%06d" % (h, mi, s, RNG.randint(1, 999999))
        if t[:6] not in TIME_POOL:
            TIME_POOL.add(t[:6])
            return t


UID_ROOT = "1.2.826.0.1.3680043.9.7781."


def fresh_uid():
    return UID_ROOT + str(RNG.randint(10**17, 10**18 - 1)) + "." + str(RNG.randint(10**5, 10**6 - 1))


# PS3.15 Table E.1-1 attributes (by keyword) that get a canary. Attributes
# the converter needs (dates we shift, descriptors we clean, identity we
# pseudonymise) are written separately with their own rules below.
E11_KEYWORDS = """
AccessionNumber AcquisitionComments AcquisitionDeviceProcessingDescription AcquisitionProtocolDescription
ActualHumanPerformersSequence AdditionalPatientHistory AdmissionID AdmittingDate AdmittingDiagnosesCodeSequence
AdmittingDiagnosesDescription AdmittingTime Allergies AuthorObserverSequence BranchOfService CassetteID
CommentsOnThePerformedProcedureStep ConfidentialityConstraintOnPatientDataDescription ContentCreatorName
ContentDate ContentTime ContrastBolusAgent CountryOfResidence CurrentPatientLocation CurveDate CurveTime
CustodialOrganizationSequence DerivationDescription DetectorID DeviceSerialNumber DeviceUID
DischargeDiagnosisDescription DistributionAddress DistributionName EthnicGroup FrameComments GantryID GeneratorID
HumanPerformerName HumanPerformerOrganization IdentifyingComments ImageComments ImagePresentationComments
ImagingServiceRequestComments Impressions InstanceCreationDate InstanceCreationTime InstanceCreatorUID
InstitutionAddress InstitutionCodeSequence InstitutionName InstitutionalDepartmentName
InsurancePlanIdentification IntendedRecipientsOfResultsIdentificationSequence InterpretationApproverSequence
InterpretationAuthor InterpretationDiagnosisDescription InterpretationIDIssuer InterpretationRecorder
InterpretationText InterpretationTranscriber IssuerOfAdmissionID IssuerOfPatientID IssuerOfServiceEpisodeID
LastMenstrualDate MedicalAlerts MedicalRecordLocator MilitaryRank ModifiedImageDescription ModifyingDeviceID
ModifyingDeviceManufacturer NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults Occupation
OperatorIdentificationSequence OperatorsName OrderCallbackPhoneNumber OrderEnteredBy OrderEntererLocation
OtherPatientIDs OtherPatientIDsSequence OtherPatientNames OverlayDate OverlayTime ParticipantSequence
PatientAddress PatientBirthDate PatientBirthName PatientBirthTime PatientComments PatientID
PatientInstitutionResidence PatientInsurancePlanCodeSequence PatientMotherBirthName PatientName
PatientPrimaryLanguageCodeSequence PatientReligiousPreference PatientSexNeutered PatientSize PatientState
PatientTelephoneNumbers PatientTransportArrangements PatientWeight PerformedLocation
PerformedProcedureStepDescription PerformedProcedureStepEndDate PerformedProcedureStepEndTime
PerformedProcedureStepID PerformedProcedureStepStartDate PerformedProcedureStepStartTime
PerformedStationAETitle PerformedStationName PerformingPhysicianIdentificationSequence PerformingPhysicianName
PersonAddress PersonName PersonTelephoneNumbers PhysicianApprovingInterpretation
PhysiciansOfRecord PhysiciansReadingStudyIdentificationSequence PlacerOrderNumberImagingServiceRequest PlateID
PreMedication PregnancyStatus ReasonForStudy ReasonForTheImagingServiceRequest ReferencedPatientAliasSequence
ReferencedPatientSequence ReferencedStudySequence ReferringPhysicianAddress ReferringPhysicianName
ReferringPhysicianTelephoneNumbers RegionOfResidence RequestAttributesSequence RequestedContrastAgent
RequestedProcedureComments RequestedProcedureDescription RequestedProcedureID RequestedProcedureLocation
RequestingPhysician RequestingService ResponsibleOrganization ResponsiblePerson ResultsComments
ResultsIDIssuer ReviewerName ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence
ScheduledPerformingPhysicianName ScheduledProcedureStepDescription ScheduledProcedureStepEndDate
ScheduledProcedureStepEndTime ScheduledProcedureStepLocation ScheduledProcedureStepStartDate
ScheduledProcedureStepStartTime ScheduledStationAETitle ScheduledStationName ScheduledStudyLocation
ScheduledStudyLocationAETitle ServiceEpisodeDescription ServiceEpisodeID SmokingStatus SpecialNeeds
StationName StudyComments StudyDescription StudyID StudyIDIssuer TextComments TextString
TimezoneOffsetFromUTC TopicAuthor TopicKeywords TopicSubject TopicTitle VerifyingObserverName
VerifyingObserverSequence VisitComments AcquisitionContextSequence OriginalAttributesSequence
""".split()

# handled with their own rules (shifted, cleaned, pseudonymised, derived)
SPECIAL = {"PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "InstitutionName", "StationName",
           "DeviceSerialNumber", "ContentDate", "ContentTime", "StudyDescription"}


def value_for(kind_vr, field):
    """A canary value of the right VR, recorded in CANARIES."""
    vr = kind_vr.split(" ")[0]
    if vr == "PN":
        fam, giv = token(), token()
        canary("name", fam, field + ".family")
        canary("name", giv, field + ".given")
        return "%s^%s" % (fam, giv)
    if vr == "DA":
        return canary("date", fresh_date(), field)
    if vr == "TM":
        return canary("time", fresh_time(RNG.random() < 0.5), field)
    if vr == "DT":
        d, t = fresh_date(), fresh_time(False)
        canary("date", d, field + ".date")
        return d + t
    if vr == "UI":
        return canary("uid", fresh_uid(), field)
    if vr in ("DS", "FL", "FD"):
        v = "%d.%03d" % (RNG.randint(101, 899), RNG.randint(101, 999))
        canary("number", v, field)
        return v if vr == "DS" else float(v)
    if vr in ("IS", "US", "SS", "UL", "SL"):
        v = RNG.randint(70001, 99999) if vr not in ("US", "SS") else RNG.randint(20001, 30000)
        canary("number", str(v), field)
        return str(v) if vr == "IS" else v
    if vr == "AS":
        return None  # age has its own rule
    if vr == "CS":
        return canary("text", token(), field)
    if vr in ("SQ", "OB", "OW", "UN", "AT"):
        return None
    return canary("text", token(), field)  # LO SH LT ST UT AE UC UR


def seq_item(field):
    item = Dataset()
    item.PatientName = value_for("PN", field + ".PatientName")
    item.PatientID = value_for("LO", field + ".PatientID")
    item.ReferencedSOPInstanceUID = value_for("UI", field + ".ReferencedSOPInstanceUID")
    item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    item.TextValue = value_for("UT", field + ".TextValue")
    return item


def fill_e11(ds, tag_prefix):
    for kw in E11_KEYWORDS:
        if kw in SPECIAL:
            continue
        tag = tag_for_keyword(kw)
        if tag is None:
            continue
        vr = dictionary_VR(tag)
        field = tag_prefix + kw
        if vr == "SQ":
            setattr(ds, kw, Sequence([seq_item(field)]))
            continue
        v = value_for(vr, field)
        if v is None:
            continue
        try:
            setattr(ds, kw, v)
        except Exception:
            pass


def csa_blob(text_canary):
    """A small but valid Siemens CSA2 header with one text element."""
    def element(name, vr, values):
        out = name.encode().ljust(64, b"\0") + struct.pack("<i4sii", 1, vr.encode().ljust(4, b"\0"), 0,
                                                           len(values))
        out += struct.pack("<i", 77)
        for v in values:
            data = v.encode() + b"\0"
            out += struct.pack("<4i", len(data), len(data), 77, len(data))
            out += data + b"\0" * ((4 - len(data) % 4) % 4)
        return out
    body = element("ImaPATModeText", "LO", [text_canary]) + element("UsedPatientWeight", "DS", ["123.456"])
    return b"SV10\4\3\2\1" + struct.pack("<ii", 2, 77) + body


def base_dataset(ts, sop_class, modality):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = fresh_uid()
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.9.7781.1"
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = ts != ExplicitVRBigEndian
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    return ds


class Subject:
    def __init__(self, code, charset, name_value, birth, sex, issuer=None):
        self.code = code
        self.charset = charset
        self.name = name_value
        self.pid = canary("text", token(), code + ".PatientID")
        self.issuer = issuer
        self.birth = birth
        self.sex = sex


def write_series(root, subj, study, series, files_written):
    """study: dict(date, time, uid, accession, desc); series: dict of settings."""
    n_slices = series.get("slices", 3)
    n_vol = series.get("volumes", 1)
    rows = cols = 8
    echo_times = series.get("echo_times", [None])
    series_uid = fresh_uid()
    canary("uid", series_uid, "SeriesInstanceUID")
    frame_uid = canary("uid", fresh_uid(), "FrameOfReferenceUID")
    inst = 1
    e11 = None
    if series.get("e11", False):
        e11 = Dataset()  # one set of canaries per series, copied into each file
        fill_e11(e11, "")
    for ei, te in enumerate(echo_times):
        for t in range(n_vol):
            for k in range(n_slices):
                ts = series.get("ts", ExplicitVRLittleEndian)
                ds = base_dataset(ts, series.get("sop", "1.2.840.10008.5.1.4.1.1.4"), series.get("modality", "MR"))
                if subj.charset:
                    ds.SpecificCharacterSet = subj.charset
                ds.PatientName = subj.name
                ds.PatientID = subj.pid
                if subj.issuer:
                    ds.IssuerOfPatientID = subj.issuer
                ds.PatientBirthDate = subj.birth
                ds.PatientSex = subj.sex
                ds.StudyInstanceUID = study["uid"]
                ds.SeriesInstanceUID = series_uid
                ds.FrameOfReferenceUID = frame_uid
                ds.StudyDate = study["date"]
                ds.SeriesDate = study["date"]
                ds.AcquisitionDate = study["date"]
                ds.ContentDate = study["date"]
                ds.StudyTime = study["time"]
                ds.SeriesTime = study["series_time"]
                ds.AcquisitionTime = study["acq_time"]
                ds.ContentTime = study["content_time"]
                ds.AccessionNumber = study["accession"]
                ds.StudyDescription = study["desc"]
                ds.InstitutionName = study["institution"]
                ds.StationName = study["station"]
                ds.DeviceSerialNumber = study["serial"]
                ds.Manufacturer = series.get("manufacturer", "SIEMENS")
                ds.ManufacturerModelName = "Prisma"
                ds.SeriesNumber = series["number"]
                ds.InstanceNumber = inst
                ds.AcquisitionNumber = t + 1
                ds.ProtocolName = series["protocol"]
                ds.SeriesDescription = series["description"]
                ds.ImageType = series.get("image_type", ["ORIGINAL", "PRIMARY", "M", "ND"])
                ds.ScanningSequence = series.get("scanning", "GR")
                ds.SequenceVariant = "SP"
                ds.MRAcquisitionType = "2D"
                ds.SequenceName = "tfl2d1"
                ds.MagneticFieldStrength = "3"
                if te is not None:
                    ds.EchoTime = "%g" % te
                    ds.EchoNumbers = ei + 1
                ds.RepetitionTime = "%g" % series.get("tr", 2000)
                ds.FlipAngle = "9"
                ds.SliceThickness = "3"
                ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
                ds.ImagePositionPatient = ["-12", "-12", "%g" % (3.0 * k)]
                ds.PixelSpacing = ["3", "3"]
                ds.SamplesPerPixel = series.get("spp", 1)
                ds.PhotometricInterpretation = "RGB" if series.get("spp", 1) == 3 else "MONOCHROME2"
                ds.Rows, ds.Columns = rows, cols
                ds.BitsAllocated = 8 if series.get("spp", 1) == 3 else 16
                ds.BitsStored = ds.BitsAllocated
                ds.HighBit = ds.BitsAllocated - 1
                ds.PixelRepresentation = 0 if series.get("spp", 1) == 3 else 1
                if series.get("spp", 1) == 3:
                    ds.PlanarConfiguration = 0
                for kw, v in series.get("extra", {}).items():
                    setattr(ds, kw, v)
                if e11 is not None:
                    for elem in e11:
                        ds.add(copy.deepcopy(elem))
                if series.get("iso2022"):
                    # ISO 2022 IR 87: a Japanese referring physician whose
                    # alphabetic group holds canaries, also named in the protocol
                    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
                    fam, giv = series["iso2022"]
                    ds.ReferringPhysicianName = "%s^%s=\u5c71\u7530^\u592a\u90ce=\u3084\u307e\u3060^\u305f\u308d\u3046" % (
                        fam, giv)
                    ds.ProtocolName = series["protocol"] + " dr " + fam
                    ds.InstitutionName = study["institution"]
                    ds.StationName = study["station"]
                    ds.DeviceSerialNumber = study["serial"]
                    # private blocks: Siemens CSA, GE and Philips creators
                    ds.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
                    ds.add_new(0x00291010, "OB", csa_blob(canary("text", token(), "CSA.ImaPATModeText")))
                    ds.add_new(0x00190010, "LO", "GEMS_ACQU_01")
                    ds.add_new(0x0019109C, "LO", canary("text", token(), "GE.0019"))
                    ds.add_new(0x00430010, "LO", "GEMS_PARM_01")
                    ds.add_new(0x0043102B, "LO", canary("text", token(), "GE.0043"))
                    ds.add_new(0x20010010, "LO", "Philips Imaging DD 001")
                    ds.add_new(0x20011060, "LO", canary("text", token(), "Philips.2001"))
                    # overlay with a comment
                    ds.add_new(0x60000010, "US", rows)
                    ds.add_new(0x60000011, "US", cols)
                    ds.add_new(0x60000040, "CS", "G")
                    ds.add_new(0x60000050, "SS", [1, 1])
                    ds.add_new(0x60000100, "US", 1)
                    ds.add_new(0x60000102, "US", 0)
                    ds.add_new(0x60003000, "OW", b"\0" * (rows * cols // 8))
                    ds.add_new(0x60004000, "LT", canary("text", token(), "OverlayComments"))
                    # the weight as a rare number
                    ds.PatientWeight = "123.456"
                if series.get("spp", 1) == 3:
                    px = (np.arange(rows * cols * 3) % 251).astype(np.uint8)
                else:
                    px = (np.arange(rows * cols) * 7 + 100 * k + 10 * t + 1000 * ei).astype("<i2")
                    if not ds.is_little_endian:
                        px = px.astype(">i2")
                ds.PixelData = px.tobytes()
                folder = os.path.join(root, series.get("folder", study["folder"]))
                os.makedirs(folder, exist_ok=True)
                name = "IM_%s_%03d_%04d" % (study["accession"], series["number"], inst)
                ds.save_as(os.path.join(folder, name), write_like_original=False)
                files_written.append(os.path.join(folder, name))
                inst += 1


def write_enhanced(root, subj, study, files):
    """An enhanced MR object (3 frames) with canaries at the top level and
    inside the shared and per-frame functional groups (a Philips-style
    private element, FrameComments, referenced UIDs)."""
    ds = base_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.4.1", "MR")
    if subj.charset:
        ds.SpecificCharacterSet = subj.charset
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = subj.name, subj.pid, subj.birth, subj.sex
    if subj.issuer:
        ds.IssuerOfPatientID = subj.issuer
    ds.RepetitionTime, ds.EchoTime = "3000", "90"
    ds.StudyInstanceUID = study["uid"]
    ds.SeriesInstanceUID = canary("uid", fresh_uid(), subj.code + ".EnhancedSeriesUID")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study["date"]
    ds.AcquisitionDateTime = study["date"] + study["acq_time"]
    ds.StudyTime, ds.AccessionNumber = study["time"], study["accession"]
    ds.InstitutionName, ds.StationName, ds.DeviceSerialNumber = study["institution"], study["station"], study["serial"]
    ds.Manufacturer, ds.ManufacturerModelName = "Philips", "Ingenia"
    ds.SeriesNumber, ds.InstanceNumber = 11, 1
    ds.ProtocolName = "T2 enhanced %s" % subj.pid
    ds.SeriesDescription = "t2 %s" % subj.name.split("=")[0].split("^")[0]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.ImageComments = canary("text", token(), subj.code + ".Enhanced.ImageComments")
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.NumberOfFrames = 3
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing, pm.SliceThickness = ["2", "2"], "2"
    po = Dataset()
    po.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ref.ReferencedSOPInstanceUID = canary("uid", fresh_uid(), subj.code + ".Enhanced.SharedReferencedSOP")
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = Sequence([pm]), Sequence([po])
    shared.ReferencedImageSequence = Sequence([ref])
    shared.add_new(0x20050010, "LO", "Philips MR Imaging DD 001")
    shared.add_new(0x20051001, "LO", canary("text", token(), subj.code + ".Enhanced.SharedPrivate"))
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k in range(3):
        it = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = ["-8", "-8", "%d" % (2 * k)]
        fc = Dataset()
        fc.StackID, fc.InStackPositionNumber = "1", k + 1
        fc.FrameComments = canary("text", token(), subj.code + ".Enhanced.FrameComments%d" % k)
        fc.FrameAcquisitionDateTime = study["date"] + study["acq_time"]
        it.PlanePositionSequence, it.FrameContentSequence = Sequence([pp]), Sequence([fc])
        it.add_new(0x20050010, "LO", "Philips MR Imaging DD 001")
        it.add_new(0x20051002, "LO", canary("text", token(), subj.code + ".Enhanced.PerFramePrivate%d" % k))
        frames.append(it)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = (np.arange(3 * 64) * 5 + 100).astype("<i2").tobytes()
    folder = os.path.join(root, study["folder"])
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "IM_%s_ENH" % study["accession"])
    ds.save_as(path, write_like_original=False)
    files.append(path)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root, out_json = args
    os.makedirs(root, exist_ok=True)

    # subjects: plain ASCII, Latin-1, UTF-8 and ISO 2022 IR 87 names
    fa, ga = token(), token()
    canary("name", fa, "A.PatientName.family")
    canary("name", ga, "A.PatientName.given")
    fb = token()
    canary("name", fb, "B.PatientName.family")
    fc = token()
    canary("name", fc, "C.PatientName.family")
    subjects = [
        Subject("A", None, "%s^%s" % (fa, ga), canary("date", "19380412", "A.PatientBirthDate"), "F"),
        # Latin-1: a diacritic inside the given name (Q7...Ü... folds to U)
        Subject("B", "ISO_IR 100", "%s^Q7M\u00dcLLER" % fb, canary("date", fresh_date(), "B.PatientBirthDate"),
                "M", issuer=canary("text", token(), "B.IssuerOfPatientID")),
        Subject("C", "ISO_IR 192", "%s^J\u00f6rg" % fc, canary("date", "20170301", "C.PatientBirthDate"), "O"),
    ]
    canary("name", "Q7MULLER", "B.PatientName.given.folded")
    subjects[0].birth = "19200101"  # aged over 90 at scan
    canary("date", "19200101", "A.PatientBirthDate.real")
    files = []
    n_series = {"converted": 0, "burned_in": 0}
    for si, subj in enumerate(subjects):
        first = fresh_date()
        # second session a known number of days later (recorded for the test)
        gap = [37, 400, 3][si]
        y, m, d = int(first[:4]), int(first[4:6]), int(first[6:])
        second = (datetime.date(y, m, d) + datetime.timedelta(days=gap)).strftime("%Y%m%d")
        if subj.code == "A":  # born 1920: over 90 at scan
            first = "2016%02d%02d" % (RNG.randint(1, 12), RNG.randint(1, 28))
            second = (datetime.date(int(first[:4]), int(first[4:6]), int(first[6:])) +
                      datetime.timedelta(days=gap)).strftime("%Y%m%d")
        if subj.code == "C":
            first, second = "20170923", "20170926"  # infant: ~6 months old
        DATE_POOL.add(second)
        canary("date", first, subj.code + ".StudyDate1")
        canary("date", second, subj.code + ".StudyDate2")
        inst = canary("text", "Q7INST" + token()[2:], subj.code + ".InstitutionName")
        station = canary("text", token(), subj.code + ".StationName")
        serial = canary("text", token(), subj.code + ".DeviceSerialNumber")
        for ses, date in enumerate([first, second]):
            acq_time = fresh_time(ses == 0)
            canary("time", acq_time, subj.code + ".AcquisitionTime%d" % ses, allowed=["AcquisitionTime",
                                                                                 "AcquisitionDateTime"])
            study = {
                "date": date, "time": canary("time", fresh_time(True), subj.code + ".StudyTime"),
                "series_time": canary("time", fresh_time(False), subj.code + ".SeriesTime"),
                "acq_time": acq_time,
                "content_time": canary("time", fresh_time(False), subj.code + ".ContentTime"),
                "uid": canary("uid", UID_ROOT + date + ".%d" % RNG.randint(1000, 9999), subj.code + ".StudyUID"),
                "accession": canary("text", token(), subj.code + ".Accession"),
                "desc": canary("text", token(), subj.code + ".StudyDescription"),
                "institution": inst, "station": station, "serial": serial,
                # folder names carry the name, ID and date
                "folder": os.path.join("%s_%s" % (subj.name.split("=")[0].replace("^", "_"), subj.pid), date),
            }
            ts = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian][(si + ses) % 3]
            if si == 2 and ses == 1:
                ts = DeflatedExplicitVRLittleEndian
            name_parts = subj.name.split("=")[0].split("^")
            # descriptors holding the patient's own name, ID and the date
            t1 = {"number": 2, "protocol": "T1 MPRAGE %s %s" % (name_parts[0], subj.pid),
                  "description": "t1_%s %s" % (name_parts[-1], date), "ts": ts, "e11": True}
            if subj.code == "A" and ses == 0:
                t1["iso2022"] = (canary("name", token(), "A.ISO2022.ReferringPhysician.family"),
                                 canary("name", token(), "A.ISO2022.ReferringPhysician.given"))
            bold = {"number": 5, "protocol": "BOLD rest %s" % study["accession"],
                    "description": "fmri %s-%s-%s" % (date[:4], date[4:6], date[6:]), "volumes": 3,
                    "scanning": "EP", "ts": ts, "tr": 1500}
            me = {"number": 7, "protocol": "multi echo fmri", "description": "me bold", "volumes": 2,
                  "scanning": "EP", "echo_times": [12.5, 30.1, 47.7], "ts": ts}
            pet = {"number": 9, "protocol": "PET brain", "description": "pet", "modality": "PT",
                   "sop": "1.2.840.10008.5.1.4.1.1.128", "ts": ts}
            for s in ([t1, bold, me, pet] if ses == 0 else [t1, bold]):
                write_series(root, subj, study, s, files)
                n_series["converted"] += 3 if s is me else 1
            if ses == 0:
                write_enhanced(root, subj, study, files)
                n_series["converted"] += 1
            if ses == 0:
                # the burned-in set: none of these may be converted
                burned = [
                    {"number": 90, "protocol": "sc", "description": "capture", "sop": "1.2.840.10008.5.1.4.1.1.7",
                     "modality": "OT", "slices": 1},
                    {"number": 91, "protocol": "sc2", "description": "capture",
                     "sop": "1.2.840.10008.5.1.4.1.1.7.2", "modality": "MR", "slices": 1},
                    {"number": 92, "protocol": "us", "description": "us", "sop": "1.2.840.10008.5.1.4.1.1.6.1",
                     "modality": "US", "slices": 1},
                    {"number": 93, "protocol": "dose", "description": "Dose Report", "modality": "CT",
                     "sop": "1.2.840.10008.5.1.4.1.1.2", "slices": 1,
                     "image_type": ["DERIVED", "SECONDARY", "SCREEN SAVE"]},
                    {"number": 94, "protocol": "shot", "description": "screenshot", "slices": 1, "spp": 3,
                     "image_type": ["DERIVED", "PRIMARY"]},
                    {"number": 95, "protocol": "annot", "description": "annotated", "slices": 2,
                     "extra": {"BurnedInAnnotation": "YES"}},
                    {"number": 96, "protocol": "dsc", "description": "capture date", "slices": 2,
                     "extra": {"DateOfSecondaryCapture": canary("date", fresh_date(), "DateOfSecondaryCapture")}},
                ]
                for s in burned:
                    s["ts"] = ExplicitVRLittleEndian
                    before = len(files)
                    write_series(root, subj, study, s, files)
                    n_series["burned_in"] += 1
                    n_series["burned_in_files"] = n_series.get("burned_in_files", 0) + len(files) - before

    # a DICOMDIR with a patient record, non-DICOM files, a truncated file
    dd = base_dataset(ExplicitVRLittleEndian, "1.2.840.10008.1.3.10", "")
    del dd.Modality
    rec = Dataset()
    rec.DirectoryRecordType = "PATIENT"
    rec.PatientName = subjects[0].name
    rec.PatientID = subjects[0].pid
    dd.DirectoryRecordSequence = Sequence([rec])
    dd.save_as(os.path.join(root, "DICOMDIR"), write_like_original=False)
    with open(os.path.join(root, "notes_%s.txt" % subjects[0].pid), "w") as f:
        f.write("Patient %s, ID %s, born %s\n" % (subjects[0].name, subjects[0].pid, subjects[0].birth))
    with open(os.path.join(root, "report.pdf"), "wb") as f:
        f.write(b"%PDF-1.4\n% " + subjects[1].pid.encode() + b"\n%%EOF\n")
    data = open(files[0], "rb").read()
    with open(os.path.join(root, "IM_truncated_%s" % subjects[0].pid), "wb") as f:
        f.write(data[: len(data) // 2])

    info = {"canaries": CANARIES, "expected_series": n_series["converted"],
            "burned_in_series": n_series["burned_in"], "burned_in_files": n_series["burned_in_files"],
            "burned_in_series_numbers": list(range(90, 97)), "subjects": len(subjects),
            "session_gaps_days": [37, 400, 3]}
    with open(out_json, "w") as f:
        json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
