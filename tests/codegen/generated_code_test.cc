// The generated API end to end: generated server bases implemented in both
// flavours (sync and callback), served by a real bevrpc::Server on loopback
// TCP, and called through generated stubs, blocking and asynchronously. The
// .proto files span two Bazel packages (tests/codegen/a, tests/codegen/b),
// nested proto packages, cross-package imports and a well-known type.
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/idempotency.h"
#include "rpc/server.h"
#include "tests/codegen/a/inventory.bevrpc.h"
#include "tests/codegen/a/item.bevrpc.h"
#include "tests/codegen/b/admin.bevrpc.h"
#include "tests/codegen/b/orders.bevrpc.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using ::acme::inventory::v1::GetItemRequest;
using ::acme::inventory::v1::Inventory;
using ::acme::inventory::v1::Item;
using ::acme::inventory::v1::ListItemsRequest;
using ::acme::inventory::v1::ListItemsResponse;
using ::acme::inventory::v1::Stock;
using ::acme::orders::Order;
using ::acme::orders::Orders;
using ::acme::orders::PlaceOrderRequest;
using ::acme::orders::admin::Admin;

// GetItem in the sync flavour (worker pool), ListItems in the callback
// flavour (I/O loop, finished later from a loop timer). DeleteItem is left
// to the generated default. Records the threads the flavours ran on.
class InventoryImpl : public Inventory::Service {
 public:
  absl::Status GetItem(ServerContext& ctx, const GetItemRequest& request,
                       Item* response) override {
    RecordThread(&sync_thread_);
    if (request.sku().empty()) {
      return absl::InvalidArgumentError("GetItem needs a sku");
    }
    response->set_sku(request.sku());
    response->set_name(absl::StrCat("item ", request.sku()));
    response->set_quantity(7);
    ctx.AddHeader("x-served-by", "inventory");
    ctx.AddHeader("x-raw-bin", std::string("\x00\xff\xab", 3));
    ctx.AddTrailer("flavour", "sync");
    return absl::OkStatus();
  }

  void ListItemsAsync(ServerContext& ctx, const ListItemsRequest& request,
                      ListItemsResponse* response, Completion done) override {
    RecordThread(&callback_thread_);
    ctx.AddHeader("x-served-by", "inventory-async");
    ctx.AddTrailer("flavour", "callback");
    ctx.RunAfter(absl::Milliseconds(1),
                 [&request, response, done = std::move(done)]() mutable {
                   for (int i = 0; i < request.limit(); ++i) {
                     response->add_items()->set_sku(absl::StrCat("sku-", i));
                   }
                   std::move(done).Finish(absl::OkStatus());
                 });
  }

  std::thread::id sync_thread() {
    MutexLock lock(&mu_);
    return sync_thread_;
  }
  std::thread::id callback_thread() {
    MutexLock lock(&mu_);
    return callback_thread_;
  }

 private:
  void RecordThread(std::thread::id* id) {
    MutexLock lock(&mu_);
    *id = std::this_thread::get_id();
  }

  Mutex mu_;
  std::thread::id sync_thread_ ABSL_GUARDED_BY(mu_);
  std::thread::id callback_thread_ ABSL_GUARDED_BY(mu_);
};

// Stock's only method takes a nested message (Item.Tag).
class StockImpl : public Stock::Service {
 public:
  absl::Status FindByTag(ServerContext& ctx, const Item::Tag& request,
                         ListItemsResponse* response) override {
    Item* item = response->add_items();
    item->set_sku(absl::StrCat(request.key(), "=", request.value()));
    return absl::OkStatus();
  }
};

// Orders and Admin, whose methods use types of other packages.
class OrdersImpl : public Orders::Service {
 public:
  absl::Status PlaceOrder(ServerContext& ctx, const PlaceOrderRequest& request,
                          Order* response) override {
    response->set_id(absl::StrCat("order-", request.items_size()));
    *response->mutable_items() = request.items();
    return absl::OkStatus();
  }

  // The message named Stub, fully qualified in the generated code.
  absl::Status Annotate(ServerContext& ctx, const ::acme::orders::Stub& request,
                        ::acme::orders::Stub* response) override {
    response->set_note(absl::StrCat(request.note(), ", seen"));
    return absl::OkStatus();
  }
};

class AdminImpl : public Admin::Service {
 public:
  // A method named like its service.
  void AdminAsync(ServerContext& ctx, const google::protobuf::Empty& request,
                  Order* response, Completion done) override {
    response->set_id("last");
    std::move(done).Finish(absl::OkStatus());
  }
};

class GeneratedCodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>(ServerOptions());
    ASSERT_TRUE(server_->RegisterService(&inventory_).ok());
    ASSERT_TRUE(server_->RegisterService(&stock_).ok());
    ASSERT_TRUE(server_->RegisterService(&orders_).ok());
    ASSERT_TRUE(server_->RegisterService(&admin_).ok());
    ASSERT_TRUE(server_->Start().ok());
    absl::StatusOr<std::unique_ptr<Channel>> channel =
        Channel::Create(absl::StrCat("127.0.0.1:", server_->port()));
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = *std::move(channel);
  }

  void TearDown() override {
    channel_.reset();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  }

  InventoryImpl inventory_;
  StockImpl stock_;
  OrdersImpl orders_;
  AdminImpl admin_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

TEST_F(GeneratedCodeTest, NamesFollowPackageServiceMethod) {
  EXPECT_STREQ(Inventory::kServiceName, "acme.inventory.v1.Inventory");
  EXPECT_STREQ(Inventory::kGetItemMethod,
               "acme.inventory.v1.Inventory/GetItem");
  EXPECT_STREQ(Admin::kAdminMethod, "acme.orders.admin.Admin/Admin");
}

TEST_F(GeneratedCodeTest, MethodTableListsEveryMethodWithoutHandlers) {
  std::vector<MethodDesc> table = Inventory::MethodTable();
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table[0].full_name, Inventory::kGetItemMethod);
  EXPECT_EQ(table[0].request_prototype, &GetItemRequest::default_instance());
  EXPECT_EQ(table[0].response_prototype, &Item::default_instance());
  EXPECT_EQ(table[1].full_name, Inventory::kListItemsMethod);
  EXPECT_EQ(table[2].full_name, Inventory::kDeleteItemMethod);
  for (const MethodDesc& m : table) EXPECT_EQ(m.handler, nullptr);

  std::vector<MethodDesc> methods = inventory_.Methods();
  ASSERT_EQ(methods.size(), 3u);
  for (const MethodDesc& m : methods) {
    EXPECT_NE(m.handler, nullptr) << m.full_name;
    EXPECT_EQ(m.mode, ExecutionMode::kInline) << m.full_name;
  }
}

// inventory.proto marks GetItem and ListItems NO_SIDE_EFFECTS and DeleteItem
// IDEMPOTENT; Stock.FindByTag has no option.
TEST_F(GeneratedCodeTest, IdempotencyComesFromTheProtoOptions) {
  static_assert(Inventory::kGetItemIdempotency == Idempotency::kNoSideEffects);
  static_assert(Inventory::kDeleteItemIdempotency == Idempotency::kIdempotent);
  static_assert(Stock::kFindByTagIdempotency == Idempotency::kUnknown);

  std::vector<MethodDesc> table = Inventory::MethodTable();
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table[0].idempotency, Idempotency::kNoSideEffects);
  EXPECT_EQ(table[1].idempotency, Idempotency::kNoSideEffects);
  EXPECT_EQ(table[2].idempotency, Idempotency::kIdempotent);
  EXPECT_EQ(Stock::MethodTable().at(0).idempotency, Idempotency::kUnknown);
  // The served methods keep it.
  EXPECT_EQ(inventory_.Methods().at(2).idempotency, Idempotency::kIdempotent);

  // Registered when the program started, before any stub or server existed.
  EXPECT_EQ(LookupIdempotency("acme.inventory.v1.Inventory/GetItem"),
            Idempotency::kNoSideEffects);
  EXPECT_EQ(LookupIdempotency("acme.inventory.v1.Inventory/ListItems"),
            Idempotency::kNoSideEffects);
  EXPECT_EQ(LookupIdempotency("acme.inventory.v1.Inventory/DeleteItem"),
            Idempotency::kIdempotent);
  EXPECT_EQ(LookupIdempotency("acme.inventory.v1.Stock/FindByTag"),
            Idempotency::kUnknown);
  EXPECT_EQ(LookupIdempotency("acme.orders.Orders/PlaceOrder"),
            Idempotency::kUnknown);
}

TEST_F(GeneratedCodeTest, DescriptorsMatchTheProtoFiles) {
  const google::protobuf::ServiceDescriptor* inventory =
      Inventory::descriptor();
  ASSERT_NE(inventory, nullptr);
  EXPECT_EQ(inventory->full_name(), Inventory::kServiceName);
  ASSERT_EQ(inventory->method_count(), 3);
  EXPECT_EQ(inventory->method(1)->name(), "ListItems");
  EXPECT_EQ(inventory_.descriptor(), inventory);
  // admin.proto defines no message: found by name in the generated pool.
  ASSERT_NE(Admin::descriptor(), nullptr);
  EXPECT_EQ(Admin::descriptor()->full_name(), "acme.orders.admin.Admin");
  EXPECT_EQ(Admin::descriptor()->method(0)->output_type(), Order::descriptor());
}

TEST_F(GeneratedCodeTest, BlockingCallToSyncFlavour) {
  Inventory::Stub stub(channel_.get());
  GetItemRequest request;
  request.set_sku("A-1");
  Metadata trailers, headers;
  absl::StatusOr<Item> item = stub.GetItem(request, {}, &trailers, &headers);
  ASSERT_TRUE(item.ok()) << item.status();
  EXPECT_EQ(item->sku(), "A-1");
  EXPECT_EQ(item->name(), "item A-1");
  EXPECT_EQ(item->quantity(), 7);
  EXPECT_EQ(trailers, (Metadata{{"flavour", "sync"}}));
  // Unary response headers (initial metadata), binary values intact.
  EXPECT_EQ(headers, (Metadata{{"x-raw-bin", std::string("\x00\xff\xab", 3)},
                               {"x-served-by", "inventory"}}));
}

TEST_F(GeneratedCodeTest, BlockingCallCarriesHandlerErrors) {
  Inventory::Stub stub(channel_.get());
  absl::StatusOr<Item> item = stub.GetItem(GetItemRequest());
  EXPECT_EQ(item.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(item.status().message(), "GetItem needs a sku");
}

TEST_F(GeneratedCodeTest, AsyncCallToCallbackFlavour) {
  Inventory::Stub stub(channel_.get());
  ListItemsRequest request;
  request.set_limit(3);
  ListItemsResponse response;
  Metadata trailers, headers;
  Notification finished;
  absl::Status result = absl::UnknownError("done not called");
  CallOptions options;
  options.timeout = absl::Seconds(10);
  stub.ListItemsAsync(
      request, &response, options,
      [&](absl::Status status) {
        result = std::move(status);
        finished.Notify();
      },
      &trailers, &headers);
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(result.ok()) << result;
  ASSERT_EQ(response.items_size(), 3);
  EXPECT_EQ(response.items(2).sku(), "sku-2");
  EXPECT_EQ(trailers["flavour"], "callback");
  EXPECT_EQ(headers, (Metadata{{"x-served-by", "inventory-async"}}));
}

TEST_F(GeneratedCodeTest, SyncFlavourRunsOffTheIoLoop) {
  Inventory::Stub stub(channel_.get());
  GetItemRequest get;
  get.set_sku("x");
  ASSERT_TRUE(stub.GetItem(get).ok());
  ASSERT_TRUE(stub.ListItems(ListItemsRequest()).ok());
  EXPECT_NE(inventory_.sync_thread(), std::thread::id());
  EXPECT_NE(inventory_.callback_thread(), std::thread::id());
  EXPECT_NE(inventory_.sync_thread(), inventory_.callback_thread());
}

TEST_F(GeneratedCodeTest, UnimplementedMethodSaysWhich) {
  Inventory::Stub stub(channel_.get());
  absl::StatusOr<Item> item = stub.DeleteItem(GetItemRequest());
  EXPECT_EQ(item.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_TRUE(absl::StrContains(item.status().message(),
                                "acme.inventory.v1.Inventory/DeleteItem"))
      << item.status();
}

TEST_F(GeneratedCodeTest, UnimplementedMethodAsync) {
  Inventory::Stub stub(channel_.get());
  Item response;
  Notification finished;
  absl::Status result;
  stub.DeleteItemAsync(GetItemRequest(), &response, CallOptions(),
                       [&](absl::Status status) {
                         result = std::move(status);
                         finished.Notify();
                       });
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(result.code(), absl::StatusCode::kUnimplemented);
  EXPECT_TRUE(absl::StrContains(result.message(), "DeleteItem")) << result;
}

TEST_F(GeneratedCodeTest, NestedMessageAsRequest) {
  Stock::Stub stub(channel_.get());
  Item::Tag tag;
  tag.set_key("colour");
  tag.set_value("red");
  absl::StatusOr<ListItemsResponse> found = stub.FindByTag(tag);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->items_size(), 1);
  EXPECT_EQ(found->items(0).sku(), "colour=red");
}

TEST_F(GeneratedCodeTest, TypesFromOtherPackages) {
  Orders::Stub orders(channel_.get());
  PlaceOrderRequest place;
  place.add_items()->set_sku("A-1");
  place.add_items()->set_sku("B-2");
  absl::StatusOr<Order> order = orders.PlaceOrder(place);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(order->id(), "order-2");
  EXPECT_EQ(order->items(1).sku(), "B-2");

  ::acme::orders::Stub note;
  note.set_note("hello");
  absl::StatusOr<::acme::orders::Stub> annotated = orders.Annotate(note);
  ASSERT_TRUE(annotated.ok()) << annotated.status();
  EXPECT_EQ(annotated->note(), "hello, seen");

  // Not overridden: the generated default.
  absl::StatusOr<Item> peek = orders.Peek(google::protobuf::Empty());
  EXPECT_EQ(peek.status().code(), absl::StatusCode::kUnimplemented);

  Admin::Stub admin(channel_.get());
  absl::StatusOr<Order> last = admin.Admin(google::protobuf::Empty());
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->id(), "last");
}

TEST_F(GeneratedCodeTest, RegisteringAServiceTwiceFails) {
  InventoryImpl again;
  Server server;
  ASSERT_TRUE(server.RegisterService(&inventory_).ok());
  EXPECT_EQ(server.RegisterService(&again).code(),
            absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace bevrpc
