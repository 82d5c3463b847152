// Output layout: BIDS-style paths from pseudonymous subject labels,
// chronological session numbers, the BIDS class and cleaned labels.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rapidnii::pipeline {

struct LayoutItem {
  std::string subject;     // keyed label
  std::string study_key;   // identifies a session inside the subject (never written)
  std::string study_sort;  // chronological sort key (real date+time; never written)
  uint64_t study_tiebreak = 0;  // keyed hash: ties never ordered by identity
  std::string datatype;    // anat, func, other
  std::string suffix;      // T1w, bold, ct...
  std::string acq;         // alphanumeric label or empty
  std::string task;        // func only
  int echo = 0;            // >0: echo-<n> entity (multi-echo bold)
  int order = 0;           // series order inside a session (series number)
  int split = 0;           // split part
};

struct LayoutResult {
  int session = 1;
  std::string rel_dir;  // sub-L/ses-n/<datatype>
  std::string stem;     // sub-L_ses-n[_task-][_acq-][_run-][_echo-]_<suffix>
};

// Sessions are numbered 1.. per subject by study_sort (then tiebreak);
// names that would collide get run-<k> in (order, split) order.
std::vector<LayoutResult> assign_layout(const std::vector<LayoutItem>& items);

}  // namespace rapidnii::pipeline
