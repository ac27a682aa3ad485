#include "tests/unit/boot/scenarios.hpp"

using namespace ballast;
using namespace ballast::boot;

namespace {

KernelSpec fake_spec(const std::string& v, int tries) { return KernelSpec{v, "/k/" + v, "/i/" + v, "", "", tries}; }

}  // namespace

TEST_CASE("the fake boot control follows the boot-counting scenarios", "[boot][fake]") {
  testing::run_all_scenarios([](const std::function<void(testing::Rig&)>& scenario) {
    FakeBootControl fake;
    testing::Rig rig{fake, [&fake] { return fake.simulate_reboot(); }, fake_spec};
    scenario(rig);
  });
}

TEST_CASE("the fake follows the boot-counting scenarios with UKIs among Type #1 entries", "[boot][fake][uki]") {
  testing::run_all_scenarios([](const std::function<void(testing::Rig&)>& scenario) {
    FakeBootControl fake;
    testing::Rig rig{fake, [&fake] { return fake.simulate_reboot(); }, [](const std::string& v, int tries) {
                       KernelSpec k = fake_spec(v, tries);
                       if (std::stoi(v) % 2 == 0) k.uki_path = "/uki/" + v;  // even versions are UKIs
                       return k;
                     }};
    scenario(rig);
    auto all = fake.entries();
    REQUIRE(all);
    for (const auto& e : *all) CHECK(e.uki == (std::stoi(e.version) % 2 == 0));
  });
}

TEST_CASE("the fake gives new entries the configured tries and refuses a full ESP", "[boot][fake]") {
  FakeBootControl fake(5);
  REQUIRE(fake.install(fake_spec("1", 0)));
  CHECK(fake.entries()->front().tries_left == 5);
  CHECK(fake.entries()->front().id == "ballast-1+5-0.conf");
  fake.set_esp_free(100);
  fake.set_file_size("/k/2", 80);
  fake.set_file_size("/i/2", 80);
  auto full = fake.install(fake_spec("2", 0));
  REQUIRE(!full);
  CHECK(full.error().code == "boot.esp-full");
  CHECK(fake.entries()->size() == 1);
}

TEST_CASE("the fake injects a failure once and refuses to remove the booted version", "[boot][fake]") {
  FakeBootControl fake;
  REQUIRE(fake.install(fake_spec("1", 0)));
  fake.fail_next(Error{"boot.write", "disk on fire", 0, {}});
  CHECK(fake.bless("1").error().code == "boot.write");
  CHECK(fake.bless("1"));
  CHECK(*fake.simulate_reboot() == "1");
  CHECK(fake.remove("1").error().code == "boot.busy");
  CHECK(fake.booted_version().value() == "1");
}
