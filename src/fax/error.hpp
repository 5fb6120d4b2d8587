// The one exception type of the fax core: a message a user can act on ("page 3: ...").
#pragma once

#include <stdexcept>

namespace switchboard::fax {

class fax_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace switchboard::fax
