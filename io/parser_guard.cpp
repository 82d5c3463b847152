#include "io/parser_guard.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>

namespace rapidnii::io {

namespace {
thread_local std::jmp_buf* current_guard = nullptr;
}

bool run_guarded_raw(GuardFn fn, void* ctx) {
  std::jmp_buf buf;
  std::jmp_buf* volatile previous = current_guard;
  if (setjmp(buf) != 0) {
    current_guard = previous;
    return false;
  }
  current_guard = &buf;
  fn(ctx);
  current_guard = previous;
  return true;
}

}  // namespace rapidnii::io

// Interposes glibc's assertion handler for every library of the process.
// Nothing of the assertion's text is printed: it may quote data.
extern "C" [[noreturn]] void __assert_fail(const char*, const char*, unsigned int, const char*) {
  if (std::jmp_buf* g = rapidnii::io::current_guard) std::longjmp(*g, 1);
  std::fputs("rapidnii: internal assertion failed\n", stderr);
  std::abort();
}
