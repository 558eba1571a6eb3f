import { Link } from 'react-router';
import { useTitle } from '../components/common';

export function NotFound() {
  useTitle('Not found');
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        There is nothing here. Go back to the <Link to="/">mesh overview</Link>.
      </p>
    </section>
  );
}
