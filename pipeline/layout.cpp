#include "pipeline/layout.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>

namespace rapidnii::pipeline {

std::vector<LayoutResult> assign_layout(const std::vector<LayoutItem>& items) {
  std::vector<LayoutResult> out(items.size());

  // sessions: per subject, distinct studies in chronological order
  std::map<std::string, std::vector<std::tuple<std::string, uint64_t, std::string>>> studies;
  for (const auto& it : items) studies[it.subject].emplace_back(it.study_sort, it.study_tiebreak, it.study_key);
  std::map<std::pair<std::string, std::string>, int> session_of;
  for (auto& [subject, list] : studies) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    int n = 0;
    for (const auto& [sort, tie, key] : list)
      if (!session_of.count({subject, key})) session_of[{subject, key}] = ++n;
  }

  // base names
  std::vector<std::string> base(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    const int ses = session_of[{it.subject, it.study_key}];
    out[i].session = ses;
    const std::string sub = "sub-" + it.subject, sesl = "ses-" + std::to_string(ses);
    out[i].rel_dir = sub + "/" + sesl + "/" + it.datatype;
    std::string b = sub + "_" + sesl;
    if (!it.task.empty()) b += "_task-" + it.task;
    if (!it.acq.empty()) b += "_acq-" + it.acq;
    base[i] = b;
  }
  // collisions -> run-<k>, numbered in series order
  std::map<std::string, std::vector<size_t>> groups;
  auto echo = [&](size_t i) { return items[i].echo > 0 ? "_echo-" + std::to_string(items[i].echo) : std::string(); };
  for (size_t i = 0; i < items.size(); ++i)
    groups[out[i].rel_dir + "/" + base[i] + echo(i) + "_" + items[i].suffix].push_back(i);
  for (auto& [key, idx] : groups) {
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      return std::tie(items[a].order, items[a].split, a) < std::tie(items[b].order, items[b].split, b);
    });
    for (size_t r = 0; r < idx.size(); ++r) {
      const size_t i = idx[r];
      out[i].stem =
          base[i] + (idx.size() > 1 ? "_run-" + std::to_string(r + 1) : "") + echo(i) + "_" + items[i].suffix;
    }
  }
  return out;
}

}  // namespace rapidnii::pipeline
