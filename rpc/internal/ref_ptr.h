// RefPtr<T>: an owning pointer to an intrusively reference-counted T, i.e.
// one with thread-safe `void Ref()` and `void Unref()` (which disposes of
// the object when the count reaches zero). Unlike std::shared_ptr it needs
// no separate control block, so handing out a pooled object allocates
// nothing. Internal to rpc/.
//
//   RefPtr<ServerCall> call(raw);    // takes a reference
//   RefPtr<ServerCall> copy = call;  // another
//
// A RefPtr object itself is not thread-safe; distinct RefPtrs to the same T
// may be used and destroyed on different threads.
#ifndef BEVRPC_RPC_INTERNAL_REF_PTR_H_
#define BEVRPC_RPC_INTERNAL_REF_PTR_H_

#include <cstddef>
#include <utility>

namespace bevrpc::internal {

template <typename T>
class RefPtr {
 public:
  RefPtr() = default;
  explicit RefPtr(T* p) : p_(p) {
    if (p_ != nullptr) p_->Ref();
  }
  RefPtr(const RefPtr& other) : RefPtr(other.p_) {}
  RefPtr(RefPtr&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  RefPtr& operator=(RefPtr other) noexcept {
    std::swap(p_, other.p_);
    return *this;
  }
  ~RefPtr() {
    if (p_ != nullptr) p_->Unref();
  }

  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  bool operator==(std::nullptr_t) const { return p_ == nullptr; }
  bool operator!=(std::nullptr_t) const { return p_ != nullptr; }

 private:
  T* p_ = nullptr;
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_REF_PTR_H_
