// An immutable string kept once per process: the header fields that every
// slice of a series repeats (SeriesInstanceUID, SOP class, transfer syntax,
// image type...) cost one pointer per slice instead of a std::string and
// its heap copy. An index of a million files holds a million headers.
//
// Equal texts have the same address, so == is a pointer comparison; < and
// <=> compare the texts. Texts are never freed (they are few: distinct
// values of per-series fields), and interning is thread-safe.
#pragma once
#include <compare>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>

namespace rapidnii::io {

class InternedString {
 public:
  InternedString() noexcept : p_(empty_text()) {}
  explicit InternedString(std::string_view s) : p_(intern(s)) {}
  InternedString& operator=(std::string_view s) {
    p_ = intern(s);
    return *this;
  }

  const std::string& str() const noexcept { return *p_; }
  operator const std::string&() const noexcept { return *p_; }
  bool empty() const noexcept { return p_->empty(); }
  size_t size() const noexcept { return p_->size(); }
  const char* c_str() const noexcept { return p_->c_str(); }
  size_t find(std::string_view s, size_t pos = 0) const noexcept { return p_->find(s, pos); }
  size_t find(char c, size_t pos = 0) const noexcept { return p_->find(c, pos); }
  std::string substr(size_t pos, size_t n = std::string::npos) const { return p_->substr(pos, n); }
  bool starts_with(std::string_view s) const noexcept { return p_->starts_with(s); }
  char operator[](size_t i) const noexcept { return (*p_)[i]; }
  std::string::const_iterator begin() const noexcept { return p_->begin(); }
  std::string::const_iterator end() const noexcept { return p_->end(); }

  friend bool operator==(const InternedString& a, const InternedString& b) noexcept { return a.p_ == b.p_; }
  friend bool operator==(const InternedString& a, std::string_view b) noexcept { return *a.p_ == b; }
  friend std::strong_ordering operator<=>(const InternedString& a, const InternedString& b) noexcept {
    return a.p_ == b.p_ ? std::strong_ordering::equal : a.p_->compare(*b.p_) <=> 0;
  }
  friend std::string operator+(const InternedString& a, std::string_view b) { return std::string(*a.p_).append(b); }
  friend std::string operator+(std::string_view a, const InternedString& b) { return std::string(a).append(*b.p_); }
  friend std::string operator+(const InternedString& a, char b) { return *a.p_ + b; }
  friend std::ostream& operator<<(std::ostream& o, const InternedString& s) { return o << *s.p_; }

 private:
  const std::string* p_;
  static const std::string* empty_text() noexcept;
  static const std::string* intern(std::string_view s);
};

}  // namespace rapidnii::io
