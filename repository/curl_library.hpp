#pragma once
// libcurl is loaded on first use (see curl_library.cpp): the API's functions are defined there.

#include <string>

namespace ballast::repository {

// The message for a handle that libcurl did not give: with the loader's reason when libcurl
// itself could not be loaded.
std::string curl_init_error();

}  // namespace ballast::repository
