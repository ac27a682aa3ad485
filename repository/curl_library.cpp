// libcurl, loaded when first used rather than when the process starts.
//
// libcurl pulls in some 30 shared libraries (TLS, Kerberos, LDAP, SSH, IDN, ...). Mapping and
// relocating them took about 15 ms of every `ballast` process's start, and most verbs, `ballast
// receive` among them, never speak HTTP. So nothing links against libcurl: this file defines the
// functions of its API that ballast calls, and the first call dlopen()s libcurl.so.4 and forwards.
// Call sites use the API as usual, with curl/curl.h's declarations; this file is their definition.
//
// These definitions are not in the executable's dynamic symbol table (nothing links against
// libcurl at build time, and the executable exports nothing else), so libcurl's calls to its own
// functions never come back here.

#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <mutex>
#include <string>

#include "repository/curl_library.hpp"

namespace ballast::repository {
namespace {

struct CurlLibrary {
  void* handle = nullptr;
  std::string error;
  CURLcode (*global_init)(long) = nullptr;
  CURL* (*easy_init)() = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  void (*easy_reset)(CURL*) = nullptr;
  CURLcode (*easy_pause)(CURL*, int) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
  CURLM* (*multi_init)() = nullptr;
  CURLMcode (*multi_setopt)(CURLM*, CURLMoption, ...) = nullptr;
  CURLMcode (*multi_add_handle)(CURLM*, CURL*) = nullptr;
  CURLMcode (*multi_remove_handle)(CURLM*, CURL*) = nullptr;
  CURLMcode (*multi_perform)(CURLM*, int*) = nullptr;
  CURLMcode (*multi_poll)(CURLM*, curl_waitfd[], unsigned int, int, int*) = nullptr;
  CURLMcode (*multi_wakeup)(CURLM*) = nullptr;
  CURLMsg* (*multi_info_read)(CURLM*, int*) = nullptr;
  CURLMcode (*multi_cleanup)(CURLM*) = nullptr;
};

template <typename F>
bool bind(void* handle, const char* name, F& fn, std::string& error) {
  void* sym = ::dlsym(handle, name);
  if (!sym) {
    if (error.empty()) error = std::string("libcurl.so.4 lacks ") + name;
    return false;
  }
  fn = reinterpret_cast<F>(sym);
  return true;
}

CurlLibrary& library_state() {
  static CurlLibrary lib;
  return lib;
}

// Null when libcurl cannot be loaded; curl_init_error() then says why.
const CurlLibrary* library() {
  static std::once_flag once;
  CurlLibrary& lib = library_state();
  std::call_once(once, [&lib] {
    // RTLD_LOCAL: its symbols resolve nothing else's. RTLD_NODELETE: it stays for the process.
    void* h = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
      const char* e = ::dlerror();
      lib.error = std::string("cannot load libcurl: ") + (e ? e : "libcurl.so.4 not found");
      return;
    }
    bool all = bind(h, "curl_global_init", lib.global_init, lib.error) &&
               bind(h, "curl_easy_init", lib.easy_init, lib.error) &&
               bind(h, "curl_easy_setopt", lib.easy_setopt, lib.error) &&
               bind(h, "curl_easy_perform", lib.easy_perform, lib.error) &&
               bind(h, "curl_easy_cleanup", lib.easy_cleanup, lib.error) &&
               bind(h, "curl_easy_getinfo", lib.easy_getinfo, lib.error) &&
               bind(h, "curl_easy_reset", lib.easy_reset, lib.error) &&
               bind(h, "curl_easy_pause", lib.easy_pause, lib.error) &&
               bind(h, "curl_easy_strerror", lib.easy_strerror, lib.error) &&
               bind(h, "curl_slist_append", lib.slist_append, lib.error) &&
               bind(h, "curl_slist_free_all", lib.slist_free_all, lib.error) &&
               bind(h, "curl_multi_init", lib.multi_init, lib.error) &&
               bind(h, "curl_multi_setopt", lib.multi_setopt, lib.error) &&
               bind(h, "curl_multi_add_handle", lib.multi_add_handle, lib.error) &&
               bind(h, "curl_multi_remove_handle", lib.multi_remove_handle, lib.error) &&
               bind(h, "curl_multi_perform", lib.multi_perform, lib.error) &&
               bind(h, "curl_multi_poll", lib.multi_poll, lib.error) &&
               bind(h, "curl_multi_wakeup", lib.multi_wakeup, lib.error) &&
               bind(h, "curl_multi_info_read", lib.multi_info_read, lib.error) &&
               bind(h, "curl_multi_cleanup", lib.multi_cleanup, lib.error);
    if (all) lib.handle = h;
  });
  return lib.handle ? &lib : nullptr;
}

// Every option and info value is passed on with the type its number's range gives it, the
// types libcurl itself reads them with (CURLOPTTYPE_*: long, object pointer, function pointer,
// curl_off_t, blob pointer).
template <typename Fn, typename Handle, typename Option>
auto forward_option(Fn fn, Handle* h, Option opt, va_list ap) {
  long n = static_cast<long>(opt);
  if (n < CURLOPTTYPE_OBJECTPOINT) return fn(h, opt, va_arg(ap, long));
  if (n < CURLOPTTYPE_FUNCTIONPOINT) return fn(h, opt, va_arg(ap, void*));
  if (n < CURLOPTTYPE_OFF_T) return fn(h, opt, va_arg(ap, void (*)()));
  if (n < CURLOPTTYPE_BLOB) return fn(h, opt, va_arg(ap, curl_off_t));
  return fn(h, opt, va_arg(ap, void*));
}

}  // namespace

std::string curl_init_error() {
  std::string why = library() ? std::string() : library_state().error;
  return "cannot initialise libcurl" + (why.empty() ? "" : ": " + why);
}

}  // namespace ballast::repository

using ballast::repository::library;

extern "C" {

CURLcode curl_global_init(long flags) {
  auto* lib = library();
  return lib ? lib->global_init(flags) : CURLE_FAILED_INIT;
}

CURL* curl_easy_init() {
  auto* lib = library();
  return lib ? lib->easy_init() : nullptr;
}

// Each function below is only reached with a handle that one of the two above returned, so
// the library is loaded.

// libcurl's header puts an enum before "..."; clang warns that va_start after a promotable
// type is undefined, but these enums' type is int, which promotion leaves as it is.
static_assert(sizeof(CURLoption) == sizeof(int) && sizeof(CURLINFO) == sizeof(int) &&
              sizeof(CURLMoption) == sizeof(int));
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wvarargs"
#endif
CURLcode curl_easy_setopt(CURL* h, CURLoption opt, ...) {
  va_list ap;
  va_start(ap, opt);
  CURLcode r = ballast::repository::forward_option(library()->easy_setopt, h, opt, ap);
  va_end(ap);
  return r;
}

CURLcode curl_easy_getinfo(CURL* h, CURLINFO info, ...) {
  va_list ap;
  va_start(ap, info);
  void* out = va_arg(ap, void*);  // every CURLINFO is answered through one pointer
  va_end(ap);
  return library()->easy_getinfo(h, info, out);
}

#if defined(__clang__)
#pragma clang diagnostic pop
#endif

CURLcode curl_easy_perform(CURL* h) { return library()->easy_perform(h); }
void curl_easy_cleanup(CURL* h) {
  if (h) library()->easy_cleanup(h);
}
void curl_easy_reset(CURL* h) { library()->easy_reset(h); }
CURLcode curl_easy_pause(CURL* h, int bitmask) { return library()->easy_pause(h, bitmask); }

const char* curl_easy_strerror(CURLcode code) {
  auto* lib = library();
  return lib ? lib->easy_strerror(code) : "libcurl is not loaded";
}

curl_slist* curl_slist_append(curl_slist* list, const char* s) {
  auto* lib = library();
  return lib ? lib->slist_append(list, s) : nullptr;
}

void curl_slist_free_all(curl_slist* list) {
  if (list) library()->slist_free_all(list);
}

CURLM* curl_multi_init() {
  auto* lib = library();
  return lib ? lib->multi_init() : nullptr;
}

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wvarargs"
#endif
CURLMcode curl_multi_setopt(CURLM* m, CURLMoption opt, ...) {
  va_list ap;
  va_start(ap, opt);
  CURLMcode r = ballast::repository::forward_option(library()->multi_setopt, m, opt, ap);
  va_end(ap);
  return r;
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

CURLMcode curl_multi_add_handle(CURLM* m, CURL* h) { return library()->multi_add_handle(m, h); }
CURLMcode curl_multi_remove_handle(CURLM* m, CURL* h) { return library()->multi_remove_handle(m, h); }
CURLMcode curl_multi_perform(CURLM* m, int* running) { return library()->multi_perform(m, running); }
CURLMcode curl_multi_poll(CURLM* m, curl_waitfd extra[], unsigned int n, int timeout_ms, int* ret) {
  return library()->multi_poll(m, extra, n, timeout_ms, ret);
}
CURLMcode curl_multi_wakeup(CURLM* m) { return library()->multi_wakeup(m); }
CURLMsg* curl_multi_info_read(CURLM* m, int* left) { return library()->multi_info_read(m, left); }
CURLMcode curl_multi_cleanup(CURLM* m) { return m ? library()->multi_cleanup(m) : CURLM_OK; }

}  // extern "C"
