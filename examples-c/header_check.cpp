// header_check.cpp: fleets.h from C++17 (extern "C" linkage, constants, typedefs).
// Built with -Wall -Wextra -Wpedantic -Werror; run by ctest as a quick smoke test.
#include <fleets.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

static_assert(std::is_same_v<fleets_result, std::uint32_t>, "fleets_result is a uint32_t");
static_assert(FLEETS_OK == 0, "FLEETS_OK is 0");

namespace {

// RAII owners: the matching *_free for each handle.
struct ConfigDeleter {
    void operator()(fleets_config_t *c) const noexcept { fleets_config_free(c); }
};
struct ClientDeleter {
    void operator()(fleets_client_t *c) const noexcept { fleets_client_free(c); }
};
using Config = std::unique_ptr<fleets_config_t, ConfigDeleter>;
using Client = std::unique_ptr<fleets_client_t, ClientDeleter>;

std::string last_error()
{
    std::string msg(fleets_last_error_message(nullptr, 0), '\0');
    fleets_last_error_message(msg.data(), msg.size() + 1);
    return msg;
}

}  // namespace

int main()
{
    if (std::string_view(fleets_version()) != FLEETS_VERSION) {
        std::fprintf(stderr, "header %s, library %s\n", FLEETS_VERSION, fleets_version());
        return 1;
    }
    // A configuration and a client without any network traffic.
    fleets_config_t *raw_cfg = nullptr;
    fleets_result rc = fleets_config_new("https://127.0.0.1:1", "ak_cpp", "secret", &raw_cfg);
    if (rc != FLEETS_OK) {
        std::fprintf(stderr, "fleets_config_new: %s: %s\n", fleets_result_name(rc), last_error().c_str());
        return 1;
    }
    Config cfg(raw_cfg);
    fleets_client_t *raw_client = nullptr;
    rc = fleets_client_new(cfg.get(), &raw_client);
    if (rc != FLEETS_OK) {
        std::fprintf(stderr, "fleets_client_new: %s: %s\n", fleets_result_name(rc), last_error().c_str());
        return 1;
    }
    Client client(raw_client);

    // A rejected argument sends nothing and names the problem.
    rc = fleets_shadow_report(client.get(), "bad/name", "{}", nullptr, 0, nullptr, 0, nullptr);
    if (rc != FLEETS_ERR_INVALID_ARGUMENT || last_error().empty()) {
        std::fprintf(stderr, "expected FLEETS_ERR_INVALID_ARGUMENT, got %s\n", fleets_result_name(rc));
        return 1;
    }
    double target = 0;
    rc = fleets_json_get_f64(R"({"delta":{"targetTemperature":24}})", "/delta/targetTemperature", &target);
    if (rc != FLEETS_OK || target != 24.0) {
        std::fprintf(stderr, "fleets_json_get_f64: %s\n", fleets_result_name(rc));
        return 1;
    }
    std::printf("C++17: libfleets %s, %s\n", fleets_version(), fleets_result_name(FLEETS_ERR_TIMEOUT));
    return 0;
}
